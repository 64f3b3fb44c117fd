"""The customer manifest (`registry/{customer}.json`): promote and roll back.

Writing the manifest is the promote step. Each kind keeps its previous entries, so rollback
points the manifest back at the last one; their tarballs stay under the endpoint prefixes.
Changes happen under the customer's lock, so two runs never interleave their writes.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from mme_factory.manifest import ManifestError, read_manifest
from mme_factory.naming import manifest_key
from mme_factory.settings import Settings
from mme_factory.store import ArtifactStore, open_store
from tasks.deployment.customer_lock import LOCK_STALE_S, customer_lock
from tasks.deployment.register_mme import Registration

__all__ = [
    "LOCK_STALE_S",
    "ManifestError",
    "customer_lock",
    "manifest_entry",
    "promote",
    "promote_task",
    "read_manifest",
    "rollback",
    "write_manifest",
]


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def write_manifest(store: ArtifactStore, manifest: dict[str, Any]) -> None:
    manifest["updated_at"] = _now()
    data = json.dumps(manifest, indent=2, sort_keys=True).encode() + b"\n"
    store.write_bytes(manifest_key(manifest["customer"]), data)


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


def promote(store: ArtifactStore, customer: str, entries: dict[str, dict]) -> dict:
    """Point the manifest at new entries; the replaced ones go to the kind's history."""
    manifest = read_manifest(store, customer)
    for kind, entry in entries.items():
        previous = manifest["models"].get(kind)
        if previous is not None:
            manifest["history"].setdefault(kind, []).append(previous)
        manifest["models"][kind] = entry
    write_manifest(store, manifest)
    return manifest


def rollback(store: ArtifactStore, customer: str, kind: str) -> dict[str, Any]:
    """Point `kind` back at its previous entry; the rolled-back entry is kept as `retired`."""
    manifest = read_manifest(store, customer)
    history = manifest["history"].get(kind) or []
    if kind not in manifest["models"]:
        raise ManifestError(f"customer {customer} has no {kind} model in its manifest")
    if not history:
        raise ManifestError(f"customer {customer} has no previous {kind} version to roll back to")
    retired = manifest["models"][kind]
    manifest["models"][kind] = history.pop()
    manifest.setdefault("retired", {}).setdefault(kind, []).append(
        {**retired, "retired_at": _now()}
    )
    write_manifest(store, manifest)
    return manifest


@task(name="promote", cache_policy=NO_CACHE)
def promote_task(settings: Settings, customer: str, entries: dict[str, dict]) -> dict:
    """Write the customer manifest: the new versions now serve."""
    return promote(open_store(settings.store, settings), customer, entries)
