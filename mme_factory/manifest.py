"""Reading customer manifests (`registry/{customer}.json`): which TargetModel serves each kind.

The pipeline's promote step writes them; warm-up, the planner and `invoke` read them here.
Offboarding replaces a manifest with a tombstone (`mme_factory.records.Tombstone`): the serving
path refuses the customer, warm-up skips it, onboarding refuses it; only `reinstate` replaces
it, and versions are then numbered after `highest_version`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from mme_factory.errors import MmeFactoryError, StoreError
from mme_factory.model_kinds import ModelKind
from mme_factory.naming import REGISTRY_PREFIX, endpoint_name_for, manifest_key, model_data_prefix
from mme_factory.records import (
    CustomerManifest,
    Tombstone,
    TrainingFingerprint,
    UnreadableRecord,
    load_json,
)
from mme_factory.store import ArtifactStore


class ManifestError(MmeFactoryError):
    """A manifest is unreadable, the customer is locked, or there is nothing to roll back to."""


class CustomerOffboarded(MmeFactoryError):
    """The customer was offboarded: its manifest is a tombstone and nothing of it is served."""

    def __init__(self, customer: str, offboarded_at: str) -> None:
        super().__init__(
            f"customer {customer} was offboarded at {offboarded_at}: its models are no longer "
            f"served and it cannot be onboarded; `mme-factory reinstate --customer {customer}` "
            "lets it be onboarded again"
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


def parse_document(data: bytes, customer: str) -> CustomerManifest | Tombstone:
    """The document at a customer's manifest key: a manifest or a tombstone."""
    try:
        document = load_json(data)
        if not isinstance(document, dict) or document.get("customer") != customer:
            raise ManifestError(f"not a manifest of customer {customer}")
        if document.get("offboarded") is True:
            return Tombstone.from_object(document)
        return CustomerManifest.from_object(document)
    except UnreadableRecord as error:
        raise ManifestError(str(error)) from None


def manifest_from_json(data: bytes, customer: str) -> CustomerManifest:
    """A manifest's content, checked for the shape its readers rely on.

    A tombstone raises CustomerOffboarded: nothing of the customer may be served.
    """
    document = parse_document(data, customer)
    if isinstance(document, Tombstone):
        raise CustomerOffboarded(customer, document.offboarded_at or "an unknown time")
    return document


def parse_manifest(data: bytes, customer: str) -> dict[str, Any]:
    """A manifest as its JSON object, for readers that look it up as JSON."""
    return manifest_from_json(data, customer).to_dict()


def current_targets(manifest: CustomerManifest) -> list[RegisteredTarget]:
    """The TargetModels a manifest serves now, one per kind and role."""
    targets = []
    for kind, entry in sorted(manifest.models.items()):
        if entry.endpoint is None or entry.targets is None:
            raise ManifestError(f"the {kind!r} entry has no endpoint and targets")
        for target in sorted(entry.targets.values()):
            targets.append(RegisteredTarget(manifest.customer, kind, entry.endpoint, target))
    return targets


def promoted_fingerprint(manifest: CustomerManifest, kind: str) -> TrainingFingerprint | None:
    """What the kind's promoted model was trained from; None when unknown or nothing promoted."""
    entry = manifest.models.get(kind)
    return entry.training_fingerprint if entry is not None else None


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
) -> CustomerManifest:
    """The customer's manifest, or an empty one when nothing was promoted yet.

    A tombstone raises CustomerOffboarded, or with `tombstone_as_empty` (an onboarding of an
    offboarded customer) reads as an empty manifest.
    """
    return read_manifest_versioned(store, customer, tombstone_as_empty)[0]


def read_manifest_versioned(
    store: ArtifactStore, customer: str, tombstone_as_empty: bool = False
) -> tuple[CustomerManifest, str | None]:
    """The manifest and its version tag (None when there is no manifest yet), for an update.

    A tombstone read with `tombstone_as_empty` gives an empty manifest and the tombstone's tag,
    so that writing the manifest replaces the tombstone.
    """
    key = manifest_key(customer)
    found = store.read_versioned(key)
    if found is None:
        return _empty_manifest(customer), None
    try:
        return manifest_from_json(found.data, customer), found.tag
    except CustomerOffboarded:
        if tombstone_as_empty:
            return _empty_manifest(customer), found.tag
        raise
    except ManifestError as error:
        raise ManifestError(f"{store.uri(key)} is an unreadable manifest: {error}") from None


def read_tombstone(store: ArtifactStore, customer: str) -> Tombstone | None:
    """The customer's tombstone; None when its manifest key holds a manifest or nothing."""
    key = manifest_key(customer)
    found = store.read_versioned(key)
    if found is None:
        return None
    try:
        document = parse_document(found.data, customer)
    except ManifestError as error:
        raise ManifestError(f"{store.uri(key)} is an unreadable manifest: {error}") from None
    return document if isinstance(document, Tombstone) else None


def refuse_if_offboarded(store: ArtifactStore, customer: str) -> None:
    """Raise CustomerOffboarded when the customer's manifest key holds a tombstone."""
    found = read_tombstone(store, customer)
    if found is not None:
        raise CustomerOffboarded(customer, found.offboarded_at or "an unknown time")


def read_document_versioned(
    store: ArtifactStore, customer: str
) -> tuple[CustomerManifest | Tombstone | None, str | None]:
    """The manifest or tombstone at the customer's key and its version tag; (None, None) when
    there is neither."""
    key = manifest_key(customer)
    found = store.read_versioned(key)
    if found is None:
        return None, None
    try:
        return parse_document(found.data, customer), found.tag
    except ManifestError as error:
        raise ManifestError(f"{store.uri(key)} is an unreadable manifest: {error}") from None


def written_fence(store: ArtifactStore, customer: str) -> int:
    """The lock generation the customer's manifest or tombstone was last written under; 0 when
    there is neither, or it is unreadable (its next write is refused anyway)."""
    try:
        document, _ = read_document_versioned(store, customer)
    except ManifestError:
        return 0
    return (document.fence or 0) if document is not None else 0


def _empty_manifest(customer: str) -> CustomerManifest:
    return CustomerManifest(customer=customer)


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
            targets += current_targets(manifest_from_json(store.read_bytes(key), customer))
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
