"""Steps around registration: pick the version, build manifest entries, withdraw on failure."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Mapping
from pathlib import Path

from prefect import task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE

from mme_factory.errors import MmeFactoryError
from mme_factory.lease_fence import Fence
from mme_factory.manifest import read_manifest
from mme_factory.naming import gate_evidence_key, model_data_prefix
from mme_factory.records import GateEvidence, ManifestEntry, SmokeLatency
from mme_factory.settings import Settings
from mme_factory.store import open_store
from tasks.deployment.publish.promote import manifest_entry
from tasks.deployment.publish.register_mme import Registration
from tasks.deployment.publish.smoke_inference import SmokeResult
from tasks.deployment.publish.withdraw_unpromoted import promoted_targets
from tasks.deployment.version_numbers import assign_version
from tasks.training.run_directory import RunDirectory

logger = logging.getLogger("mme_factory.withdraw")


@task(name="assign-version", cache_policy=NO_CACHE)
def assign_version_task(settings: Settings, customer: str, fence: Fence | None = None) -> int:
    """The next version number for the customer's TargetModels (call under the customer lock)."""
    return assign_version(open_store(settings.store, settings), settings, customer, fence)


def export_dir_for(run: RunDirectory, registration: Registration) -> Path:
    base = run.kind_dir(registration.kind)
    return base / registration.role if registration.role else base


def smoke_inputs_for(run: RunDirectory, registration: Registration) -> list[str]:
    return run.metadata(registration.kind).smoke_inputs or ["hello"]


def manifest_entries(
    registrations: list[Registration],
    smoke: list[SmokeResult],
    run: RunDirectory,
    gate_evidence: Mapping[str, str] | None = None,
) -> dict[str, ManifestEntry]:
    """Each kind's manifest entry, with the smoke test's cold and warm latency per target and
    the store key of its gate evidence (`gate_evidence`, kind -> key)."""
    by_kind: dict[str, list[Registration]] = defaultdict(list)
    for registration in registrations:
        by_kind[registration.kind].append(registration)
    latency = {
        r.target_model: SmokeLatency(cold_ms=round(r.cold_ms, 1), warm_ms=round(r.warm_ms, 1))
        for r in smoke
    }
    entries = {}
    for kind, group in by_kind.items():
        entry = manifest_entry(group, run.metadata(kind).metrics or {}, run.run_id)
        entry.smoke = {r.target_model: latency.get(r.target_model) for r in group}
        entry.gate_evidence = (gate_evidence or {}).get(kind)
        entries[kind] = entry
    return entries


@task(name="keep-gate-evidence", cache_policy=NO_CACHE)
def keep_gate_evidence(
    registrations: list[Registration], run: RunDirectory, settings: Settings
) -> dict[str, str]:
    """Put each registered kind's gate evidence beside the manifest, for the next retrain's
    gate; kind -> store key. A run that kept none (from an older release) has no entry."""
    store = open_store(settings.store, settings)
    kept = {}
    for registration in registrations:
        path = GateEvidence.path_in(run.kind_dir(registration.kind))
        if registration.kind in kept or not path.is_file():
            continue
        key = gate_evidence_key(registration.customer, registration.kind, registration.version)
        store.write_bytes(key, path.read_bytes())
        kept[registration.kind] = key
    return kept


@task(name="withdraw-uploads", cache_policy=NO_CACHE)
def withdraw_uploads(registrations: list[Registration], settings: Settings) -> list[str]:
    """Delete the tarballs (and gate evidence) this run uploaded, so a failed run leaves
    nothing half-published.

    The manifest is read first: a promote whose answer was lost may have landed, and what the
    manifest names stays. When it cannot be read, nothing is deleted; the customer's next run
    withdraws what no manifest names.
    """
    store = open_store(settings.store, settings)
    try:
        named = {
            target
            for customer in {r.customer for r in registrations}
            for target in promoted_targets(read_manifest(store, customer, tombstone_as_empty=True))
        }
    except MmeFactoryError as error:
        logger.warning("uploads left for the next run to withdraw: %s", error)
        return []
    registrations = [r for r in registrations if r.target_model not in named]
    removed = []
    for registration in registrations:
        if registration.uploaded:
            key = model_data_prefix(registration.endpoint) + registration.target_model
            store.delete(key)
            removed.append(key)
    for customer, kind, version in {(r.customer, r.kind, r.version) for r in registrations}:
        evidence = gate_evidence_key(customer, kind, version)
        if store.exists(evidence):
            store.delete(evidence)
            removed.append(evidence)
    return removed


@task(name="report-smoke-results", cache_policy=NO_CACHE)
def report_smoke_results(results: list[SmokeResult]) -> None:
    create_table_artifact(
        [
            {
                "endpoint": r.endpoint,
                "TargetModel": r.target_model,
                "passed": r.passed,
                "cold ms": round(r.cold_ms, 1),
                "warm ms": round(r.warm_ms, 1),
                "detail": r.detail,
            }
            for r in results
        ],
        key="smoke-inference",
        description="Smoke inference through the endpoints",
    )
