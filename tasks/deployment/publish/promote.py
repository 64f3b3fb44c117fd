"""The customer manifest (`registry/{customer}.json`): promote and roll back.

Writing the manifest is the promote step. Each kind keeps its previous entries, so rollback
points the manifest back at the last one; their tarballs stay under the endpoint prefixes.
Changes happen under the customer's lock and are fenced by it (`fenced_manifest`), so two runs
never interleave their writes and a run that lost the lock writes nothing. A customer's
tombstone is never replaced here: an offboarded customer stays offboarded until `reinstate`.
"""

from __future__ import annotations

from collections.abc import Mapping

from prefect import task
from prefect.cache_policies import NO_CACHE

from mme_factory.lease_fence import Fence
from mme_factory.manifest import ManifestError
from mme_factory.naming import manifest_key, model_data_prefix
from mme_factory.records import CustomerManifest, ManifestEntry, Metrics, TrainingFingerprint
from mme_factory.settings import Settings
from mme_factory.store import ArtifactStore, open_store
from tasks.deployment.fenced_manifest import encode_document, now, update_manifest
from tasks.deployment.publish.register_mme import Registration


def write_manifest(store: ArtifactStore, manifest: CustomerManifest) -> None:
    store.write_bytes(manifest_key(manifest.customer), encode_document(manifest))


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
        promoted_at=now(),
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
    fence: Fence | None = None,
) -> CustomerManifest:
    """Point the manifest at new entries; the replaced ones go to the kind's history.

    Refused (CustomerOffboarded) when the manifest is a tombstone, and (ManifestError) when a
    tarball an entry names is missing. Entries and fingerprints handed over as JSON objects are
    read as their records.
    """
    found = fingerprints or {}
    promoted = {
        kind: with_fingerprint(
            ManifestEntry.model_validate(entry),
            TrainingFingerprint.model_validate(found[kind]) if kind in found else None,
        )
        for kind, entry in entries.items()
    }
    refuse_missing_tarballs(store, customer, promoted)

    def point_at_new_entries(manifest: CustomerManifest) -> None:
        history = dict(manifest.history)
        for kind in promoted:
            previous = manifest.models.get(kind)
            if previous is not None:
                history[kind] = [*history.get(kind, []), previous]
        manifest.history = history
        manifest.models = {**manifest.models, **promoted}

    return update_manifest(store, customer, point_at_new_entries, fence)


def refuse_missing_tarballs(
    store: ArtifactStore, customer: str, entries: Mapping[str, ManifestEntry]
) -> None:
    """A manifest never points at a TargetModel whose tarball is not in the store."""
    missing = [
        store.uri(key)
        for entry in entries.values()
        for target in (entry.targets or {}).values()
        if entry.endpoint is not None
        and not store.exists(key := model_data_prefix(entry.endpoint) + target)
    ]
    if missing:
        raise ManifestError(
            f"customer {customer}: not promoted, the tarballs {missing} are gone (withdrawn by "
            "another run?); run the onboarding again"
        )


def rollback(
    store: ArtifactStore, customer: str, kind: str, fence: Fence | None = None
) -> CustomerManifest:
    """Point `kind` back at its previous entry; the rolled-back entry is kept as `retired`."""

    def point_back(manifest: CustomerManifest) -> None:
        history = list(manifest.history.get(kind) or [])
        if kind not in manifest.models:
            raise ManifestError(f"customer {customer} has no {kind} model in its manifest")
        if not history:
            raise ManifestError(
                f"customer {customer} has no previous {kind} version to roll back to"
            )
        retired = manifest.models[kind].model_copy(update={"retired_at": now()})
        manifest.models = {**manifest.models, kind: history.pop()}
        manifest.history = {**manifest.history, kind: history}
        manifest.retired = {**manifest.retired, kind: [*manifest.retired.get(kind, []), retired]}

    return update_manifest(store, customer, point_back, fence)


@task(name="promote", cache_policy=NO_CACHE)
def promote_task(
    settings: Settings,
    customer: str,
    entries: Mapping[str, ManifestEntry],
    fingerprints: Mapping[str, TrainingFingerprint] | None = None,
    fence: Fence | None = None,
) -> CustomerManifest:
    """Write the customer manifest: the new versions now serve."""
    store = open_store(settings.store, settings)
    return promote(store, customer, entries, fingerprints, fence)
