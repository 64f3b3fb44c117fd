"""The customer manifest (`registry/{customer}.json`): promote and roll back.

Writing the manifest is the promote step. Each kind keeps its previous entries, so rollback
points the manifest back at the last one; their tarballs stay under the endpoint prefixes.
Changes happen under the customer's lock, so two runs never interleave their writes.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from mme_factory.manifest import (
    TRAINING_FINGERPRINT,
    CustomerOffboarded,
    ManifestError,
    read_manifest_versioned,
    read_tombstone,
)
from mme_factory.naming import manifest_key
from mme_factory.settings import Settings
from mme_factory.store import ArtifactStore, StoreUnavailable, open_store
from tasks.deployment.register_mme import Registration

WRITE_ATTEMPTS = 3


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def encode_manifest(manifest: dict[str, Any]) -> bytes:
    manifest["updated_at"] = _now()
    return json.dumps(manifest, indent=2, sort_keys=True).encode() + b"\n"


def write_manifest(store: ArtifactStore, manifest: dict[str, Any]) -> None:
    store.write_bytes(manifest_key(manifest["customer"]), encode_manifest(manifest))


def update_manifest(
    store: ArtifactStore,
    customer: str,
    change: Callable[[dict[str, Any]], None],
    replace_tombstone: bool = False,
) -> dict[str, Any]:
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


def manifest_entry(registrations: list[Registration], metrics: dict[str, Any], run_id: str) -> dict:
    """One kind's entry: its TargetModels (one per role), endpoint, version, code, metrics."""
    first = registrations[0]
    return {
        "endpoint": first.endpoint,
        "version": first.version,
        "code_version": first.code_version,
        "targets": {(r.role or r.kind): r.target_model for r in registrations},
        "sha256": {(r.role or r.kind): r.sha256 for r in registrations},
        "metrics": metrics,
        "run_id": run_id,
        "promoted_at": _now(),
    }


def with_fingerprint(entry: dict[str, Any], fingerprint: dict[str, str] | None) -> dict[str, Any]:
    """The entry with what it was trained from; the code version is the one it was packaged with."""
    if fingerprint is None:
        return entry
    code = entry.get("code_version") or fingerprint["inference_code_version"]
    return {**entry, TRAINING_FINGERPRINT: {**fingerprint, "inference_code_version": code}}


def promote(
    store: ArtifactStore,
    customer: str,
    entries: dict[str, dict],
    fingerprints: dict[str, dict[str, str]] | None = None,
    started_at: datetime | None = None,
) -> dict:
    """Point the manifest at new entries; the replaced ones go to the kind's history.

    A tombstone is replaced (the customer onboarded again) only if it is older than the run
    (`started_at`): a customer offboarded while its run trained stays offboarded.
    """
    refuse_if_offboarded_since(store, customer, started_at)
    entries = {
        kind: with_fingerprint(entry, (fingerprints or {}).get(kind))
        for kind, entry in entries.items()
    }

    def point_at_new_entries(manifest: dict[str, Any]) -> None:
        for kind, entry in entries.items():
            previous = manifest["models"].get(kind)
            if previous is not None:
                manifest["history"].setdefault(kind, []).append(previous)
            manifest["models"][kind] = entry

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
    offboarded_at = str(found.get("offboarded_at", ""))
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


def rollback(store: ArtifactStore, customer: str, kind: str) -> dict[str, Any]:
    """Point `kind` back at its previous entry; the rolled-back entry is kept as `retired`."""

    def point_back(manifest: dict[str, Any]) -> None:
        history = manifest["history"].get(kind) or []
        if kind not in manifest["models"]:
            raise ManifestError(f"customer {customer} has no {kind} model in its manifest")
        if not history:
            raise ManifestError(
                f"customer {customer} has no previous {kind} version to roll back to"
            )
        retired = manifest["models"][kind]
        manifest["models"][kind] = history.pop()
        manifest.setdefault("retired", {}).setdefault(kind, []).append(
            {**retired, "retired_at": _now()}
        )

    return update_manifest(store, customer, point_back)


@task(name="promote", cache_policy=NO_CACHE)
def promote_task(
    settings: Settings,
    customer: str,
    entries: dict[str, dict],
    fingerprints: dict[str, dict[str, str]] | None = None,
    started_at: datetime | None = None,
) -> dict:
    """Write the customer manifest: the new versions now serve."""
    store = open_store(settings.store, settings)
    return promote(store, customer, entries, fingerprints, started_at)
