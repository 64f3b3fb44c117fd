"""Reading customer manifests (`registry/{customer}.json`): which TargetModel serves each kind.

The pipeline's promote step writes them; warm-up, the planner and `invoke` read them here.
Offboarding replaces a manifest with a tombstone, `{"customer", "offboarded": true,
"offboarded_at", "highest_version"}`: the serving path refuses the customer, warm-up skips it,
and a later onboarding replaces it and numbers its versions after `highest_version`.
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


class CustomerOffboarded(MmeFactoryError):
    """The customer was offboarded: its manifest is a tombstone and nothing of it is served."""

    def __init__(self, customer: str, offboarded_at: str) -> None:
        super().__init__(
            f"customer {customer} was offboarded at {offboarded_at}: its models are no longer "
            "served; onboard the customer again to serve it"
        )
        self.customer, self.offboarded_at = customer, offboarded_at


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


def tombstone(customer: str, highest_version: int, offboarded_at: str) -> dict[str, Any]:
    """What replaces an offboarded customer's manifest."""
    return {
        "customer": customer,
        "offboarded": True,
        "offboarded_at": offboarded_at,
        "highest_version": highest_version,
    }


def parse_document(data: bytes, customer: str) -> dict[str, Any]:
    """The JSON object at a customer's manifest key: a manifest or a tombstone."""
    try:
        document = json.loads(data)
    except (ValueError, RecursionError) as error:
        raise ManifestError(f"not JSON: {error}") from None
    if not isinstance(document, dict) or document.get("customer") != customer:
        raise ManifestError(f"not a manifest of customer {customer}")
    if is_tombstone(document) and not isinstance(document.get("highest_version"), int):
        raise ManifestError("a tombstone without an integer 'highest_version'")
    return document


def is_tombstone(document: dict[str, Any]) -> bool:
    return document.get("offboarded") is True


def parse_manifest(data: bytes, customer: str) -> dict[str, Any]:
    """A manifest's content, checked for the shape its readers rely on.

    A tombstone raises CustomerOffboarded: nothing of the customer may be served.
    """
    manifest = parse_document(data, customer)
    if is_tombstone(manifest):
        raise CustomerOffboarded(customer, str(manifest.get("offboarded_at", "an unknown time")))
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


TRAINING_FINGERPRINT = "training_fingerprint"  # a kind entry's {data,settings}_sha256, code


def promoted_fingerprint(manifest: dict[str, Any], kind: str) -> dict[str, str] | None:
    """What the kind's promoted model was trained from; None when unknown or nothing promoted."""
    entry = manifest["models"].get(kind)
    found = entry.get(TRAINING_FINGERPRINT) if isinstance(entry, dict) else None
    return found if isinstance(found, dict) else None


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


def read_manifest(
    store: ArtifactStore, customer: str, tombstone_as_empty: bool = False
) -> dict[str, Any]:
    """The customer's manifest, or an empty one when nothing was promoted yet.

    A tombstone raises CustomerOffboarded, or with `tombstone_as_empty` (an onboarding of an
    offboarded customer) reads as an empty manifest.
    """
    return read_manifest_versioned(store, customer, tombstone_as_empty)[0]


def read_manifest_versioned(
    store: ArtifactStore, customer: str, tombstone_as_empty: bool = False
) -> tuple[dict[str, Any], str | None]:
    """The manifest and its version tag (None when there is no manifest yet), for an update.

    A tombstone read with `tombstone_as_empty` gives an empty manifest and the tombstone's tag,
    so that writing the manifest replaces the tombstone.
    """
    key = manifest_key(customer)
    found = store.read_versioned(key)
    if found is None:
        return _empty_manifest(customer), None
    try:
        return parse_manifest(found.data, customer), found.tag
    except CustomerOffboarded:
        if tombstone_as_empty:
            return _empty_manifest(customer), found.tag
        raise
    except ManifestError as error:
        raise ManifestError(f"{store.uri(key)} is an unreadable manifest: {error}") from None


def read_tombstone(store: ArtifactStore, customer: str) -> dict[str, Any] | None:
    """The customer's tombstone; None when its manifest key holds a manifest or nothing."""
    key = manifest_key(customer)
    found = store.read_versioned(key)
    if found is None:
        return None
    try:
        document = parse_document(found.data, customer)
    except ManifestError as error:
        raise ManifestError(f"{store.uri(key)} is an unreadable manifest: {error}") from None
    return document if is_tombstone(document) else None


def _empty_manifest(customer: str) -> dict[str, Any]:
    return {"customer": customer, "models": {}, "history": {}}


def read_registry(store: ArtifactStore) -> Registry:
    """Every current TargetModel of every readable manifest, and the manifests that are not.

    A tombstone is neither: an offboarded customer has nothing to serve.
    """
    targets: list[RegisteredTarget] = []
    unreadable: list[UnreadableManifest] = []
    for key in store.list_keys(REGISTRY_PREFIX):
        if not key.endswith(".json"):
            continue
        customer = key[len(REGISTRY_PREFIX) :].removesuffix(".json")
        try:
            targets += current_targets(parse_manifest(store.read_bytes(key), customer))
        except CustomerOffboarded:
            continue
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
