"""Reading customer manifests (`registry/{customer}.json`): which TargetModel serves each kind.

The pipeline's promote step writes them; warm-up, the planner and `invoke` read them here.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from mme_factory.errors import MmeFactoryError, StoreError
from mme_factory.model_kinds import ModelKind
from mme_factory.naming import REGISTRY_PREFIX, endpoint_name_for, manifest_key, model_data_prefix
from mme_factory.store import ArtifactStore


class ManifestError(MmeFactoryError):
    """A manifest is unreadable, the customer is locked, or there is nothing to roll back to."""


@dataclass(frozen=True)
class RegisteredTarget:
    customer: str
    kind: str
    endpoint: str
    target_model: str


@dataclass(frozen=True)
class UnreadableManifest:
    key: str
    customer: str  # as the key names it
    reason: str


@dataclass(frozen=True)
class Registry:
    targets: list[RegisteredTarget]
    unreadable: list[UnreadableManifest]


def parse_manifest(data: bytes, customer: str) -> dict[str, Any]:
    """A manifest's content, checked for the shape its readers rely on."""
    try:
        manifest = json.loads(data)
    except (ValueError, RecursionError) as error:
        raise ManifestError(f"not JSON: {error}") from None
    if not isinstance(manifest, dict) or manifest.get("customer") != customer:
        raise ManifestError(f"not a manifest of customer {customer}")
    for section in ("models", "history", "retired"):
        if not isinstance(manifest.setdefault(section, {}), dict):
            raise ManifestError(f"{section!r} is not an object")
    return manifest


def current_targets(manifest: dict[str, Any]) -> list[RegisteredTarget]:
    """The TargetModels a manifest serves now, one per kind and role."""
    targets = []
    for kind, entry in sorted(manifest["models"].items()):
        if not (
            isinstance(entry, dict)
            and isinstance(entry.get("endpoint"), str)
            and isinstance(entry.get("targets"), dict)
            and all(isinstance(target, str) for target in entry["targets"].values())
        ):
            raise ManifestError(f"the {kind!r} entry has no endpoint and targets")
        for target in sorted(entry["targets"].values()):
            targets.append(RegisteredTarget(manifest["customer"], kind, entry["endpoint"], target))
    return targets


def named_entries(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    """Every entry the manifest names: current, in a kind's history, or retired by a rollback."""
    entries = list(manifest.get("models", {}).values())
    for section in ("history", "retired"):
        for kept in manifest.get(section, {}).values():
            entries += kept
    return entries


def uploaded_target_models(
    store: ArtifactStore, env: str, customer: str
) -> Iterator[tuple[str, str]]:
    """(store key, TargetModel) of every object under the customer's folder on each endpoint."""
    for kind in ModelKind:
        prefix = model_data_prefix(endpoint_name_for(kind.value, env))
        for key in store.list_keys(f"{prefix}{customer}/"):
            yield key, key[len(prefix) :]


def read_manifest(store: ArtifactStore, customer: str) -> dict[str, Any]:
    """The customer's manifest, or an empty one when nothing was promoted yet."""
    return read_manifest_versioned(store, customer)[0]


def read_manifest_versioned(
    store: ArtifactStore, customer: str
) -> tuple[dict[str, Any], str | None]:
    """The manifest and its version tag (None when there is no manifest yet), for an update."""
    key = manifest_key(customer)
    found = store.read_versioned(key)
    if found is None:
        return {"customer": customer, "models": {}, "history": {}}, None
    try:
        return parse_manifest(found.data, customer), found.tag
    except ManifestError as error:
        raise ManifestError(f"{store.uri(key)} is an unreadable manifest: {error}") from None


def read_registry(store: ArtifactStore) -> Registry:
    """Every current TargetModel of every readable manifest, and the manifests that are not."""
    targets: list[RegisteredTarget] = []
    unreadable: list[UnreadableManifest] = []
    for key in store.list_keys(REGISTRY_PREFIX):
        if not key.endswith(".json"):
            continue
        customer = key[len(REGISTRY_PREFIX) :].removesuffix(".json")
        try:
            targets += current_targets(parse_manifest(store.read_bytes(key), customer))
        except (ManifestError, StoreError) as error:
            unreadable.append(UnreadableManifest(key, customer, str(error)))
    return Registry(targets, unreadable)


def registered_targets(store: ArtifactStore) -> list[RegisteredTarget]:
    """Every current TargetModel in every customer manifest; unreadable manifests are an error."""
    registry = read_registry(store)
    if registry.unreadable:
        raise ManifestError(
            "unreadable manifests: "
            + "; ".join(f"{store.uri(m.key)}: {m.reason}" for m in registry.unreadable)
        )
    return registry.targets
