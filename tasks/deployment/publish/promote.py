"""The customer manifest (`registry/{customer}.json`): promote and roll back.

Writing the manifest is the promote step. Each kind keeps its previous entries, so rollback
points the manifest back at the last one; their tarballs stay under the endpoint prefixes.
Changes happen under the customer's lock, so two runs never interleave their writes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime

from prefect import task
from prefect.cache_policies import NO_CACHE

from mme_factory.manifest import (
    CustomerOffboarded,
    ManifestError,
    read_manifest_versioned,
    read_tombstone,
)
from mme_factory.naming import manifest_key
from mme_factory.records import CustomerManifest, ManifestEntry, Metrics, TrainingFingerprint
from mme_factory.settings import Settings
from mme_factory.store import ArtifactStore, StoreUnavailable, open_store
from tasks.deployment.publish.register_mme import Registration

WRITE_ATTEMPTS = 3


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def encode_manifest(manifest: CustomerManifest) -> bytes:
    manifest.updated_at = _now()
    return manifest.to_json().encode()


def write_manifest(store: ArtifactStore, manifest: CustomerManifest) -> None:
    store.write_bytes(manifest_key(manifest.customer), encode_manifest(manifest))


def update_manifest(
    store: ArtifactStore,
    customer: str,
    change: Callable[[CustomerManifest], None],
    replace_tombstone: bool = False,
) -> CustomerManifest:
    """Apply `change` and write the manifest only if no one else wrote it since it was read.

    The customer lock keeps other runs out; the conditional write is what keeps a run that lost
    its lock from overwriting the next run's manifest. An offboarded customer's tombstone is
    replaced only with `replace_tombstone` (a promote); otherwise it raises CustomerOffboarded.
    """
    key = manifest_key(customer)
    manifest, tag = read_manifest_versioned(store, customer, tombstone_as_empty=replace_tombstone)
    change(manifest)
    data = encode_manifest(manifest)
    for attempt in range(WRITE_ATTEMPTS):
        try:
            if tag is None:
                written = store.create_exclusive(key, data)
            else:
                written = store.replace_if(key, data, tag)
        except StoreUnavailable:
            if attempt == WRITE_ATTEMPTS - 1:
                raise
            current = store.read_versioned(key)
            if current is not None and current.data == data:
                return manifest  # the write went through; only its answer was lost
            if (current.tag if current is not None else None) == tag:
                continue
            written = None
        if written is None:
            raise ManifestError(
                f"{store.uri(key)} was changed by another run while this run updated it; "
                "nothing was written: check the manifest and run again"
            )
        return manifest
    raise AssertionError("unreachable")


def manifest_entry(
    registrations: list[Registration], metrics: Metrics, run_id: str
) -> ManifestEntry:
    """One kind's entry: its TargetModels (one per role), endpoint, version, code, metrics."""
    first = registrations[0]
    return ManifestEntry(
        endpoint=first.endpoint,
        version=first.version,
        code_version=first.code_version,
        targets={(r.role or r.kind): r.target_model for r in registrations},
        sha256={(r.role or r.kind): r.sha256 for r in registrations},
        metrics=metrics,
        run_id=run_id,
        promoted_at=_now(),
    )


def with_fingerprint(
    entry: ManifestEntry, fingerprint: TrainingFingerprint | None
) -> ManifestEntry:
    """The entry with what it was trained from; the code version is the one it was packaged with."""
    if fingerprint is None:
        return entry
    code = entry.code_version or fingerprint.inference_code_version
    trained_from = fingerprint.model_copy(update={"inference_code_version": code})
    return entry.model_copy(update={"training_fingerprint": trained_from})


def promote(
    store: ArtifactStore,
    customer: str,
    entries: Mapping[str, ManifestEntry],
    fingerprints: Mapping[str, TrainingFingerprint] | None = None,
    started_at: datetime | None = None,
) -> CustomerManifest:
    """Point the manifest at new entries; the replaced ones go to the kind's history.

    A tombstone is replaced (the customer onboarded again) only if it is older than the run
    (`started_at`): a customer offboarded while its run trained stays offboarded. Entries and
    fingerprints handed over as JSON objects are read as their records.
    """
    refuse_if_offboarded_since(store, customer, started_at)
    found = fingerprints or {}
    promoted = {
        kind: with_fingerprint(
            ManifestEntry.model_validate(entry),
            TrainingFingerprint.model_validate(found[kind]) if kind in found else None,
        )
        for kind, entry in entries.items()
    }

    def point_at_new_entries(manifest: CustomerManifest) -> None:
        history = dict(manifest.history)
        for kind in promoted:
            previous = manifest.models.get(kind)
            if previous is not None:
                history[kind] = [*history.get(kind, []), previous]
        manifest.history = history
        manifest.models = {**manifest.models, **promoted}

    return update_manifest(store, customer, point_at_new_entries, replace_tombstone=True)


def refuse_if_offboarded_since(
    store: ArtifactStore, customer: str, started_at: datetime | None
) -> None:
    """Raise CustomerOffboarded if the customer was offboarded at or after `started_at`."""
    if started_at is None:
        return
    found = read_tombstone(store, customer)
    if found is None:
        return
    offboarded_at = found.offboarded_at or ""
    try:
        when = datetime.fromisoformat(offboarded_at)
    except ValueError:
        when = None
    if when is None or when >= started_at.replace(microsecond=0):
        raise CustomerOffboarded(
            customer,
            f"{offboarded_at or 'an unknown time'}, while this onboarding (started "
            f"{started_at.isoformat(timespec='seconds')}) was running; nothing was promoted",
        )


def rollback(store: ArtifactStore, customer: str, kind: str) -> CustomerManifest:
    """Point `kind` back at its previous entry; the rolled-back entry is kept as `retired`."""

    def point_back(manifest: CustomerManifest) -> None:
        history = list(manifest.history.get(kind) or [])
        if kind not in manifest.models:
            raise ManifestError(f"customer {customer} has no {kind} model in its manifest")
        if not history:
            raise ManifestError(
                f"customer {customer} has no previous {kind} version to roll back to"
            )
        retired = manifest.models[kind].model_copy(update={"retired_at": _now()})
        manifest.models = {**manifest.models, kind: history.pop()}
        manifest.history = {**manifest.history, kind: history}
        manifest.retired = {**manifest.retired, kind: [*manifest.retired.get(kind, []), retired]}

    return update_manifest(store, customer, point_back)


@task(name="promote", cache_policy=NO_CACHE)
def promote_task(
    settings: Settings,
    customer: str,
    entries: Mapping[str, ManifestEntry],
    fingerprints: Mapping[str, TrainingFingerprint] | None = None,
    started_at: datetime | None = None,
) -> CustomerManifest:
    """Write the customer manifest: the new versions now serve."""
    store = open_store(settings.store, settings)
    return promote(store, customer, entries, fingerprints, started_at)
