"""Withdraw what an interrupted run uploaded but never promoted.

A run that fails withdraws its own uploads; a run that is killed cannot. The next run of the
customer, holding the customer lock (so no other run is uploading), deletes every TargetModel
of the customer that the manifest does not name as current, previous or retired: those were
never served through the manifest, and their version numbers are not reused.
"""

from __future__ import annotations

import logging
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from mme_factory.manifest import read_manifest
from mme_factory.model_kinds import ModelKind
from mme_factory.naming import endpoint_name_for, model_data_prefix
from mme_factory.settings import Settings
from mme_factory.store import ArtifactStore, open_store

logger = logging.getLogger("mme_factory.withdraw")


def promoted_targets(manifest: dict[str, Any]) -> set[str]:
    """Every TargetModel the manifest names: current, in history, or retired by a rollback."""
    entries = list(manifest.get("models", {}).values())
    for section in ("history", "retired"):
        for kept in manifest.get(section, {}).values():
            entries += kept
    return {target for entry in entries for target in entry.get("targets", {}).values()}


def withdraw_unpromoted(store: ArtifactStore, settings: Settings, customer: str) -> list[str]:
    """Delete the customer's TargetModels no manifest entry names; call under the lock."""
    kept = promoted_targets(read_manifest(store, customer))
    removed = []
    for kind in ModelKind:
        prefix = model_data_prefix(endpoint_name_for(kind.value, settings.env))
        for key in sorted(store.list_keys(f"{prefix}{customer}/")):
            if key[len(prefix) :] not in kept:
                store.delete(key)
                removed.append(key)
    if removed:
        logger.warning(
            "withdrew %d unpromoted upload(s) of %s: %s", len(removed), customer, removed
        )
    return removed


@task(name="withdraw-unpromoted", cache_policy=NO_CACHE)
def withdraw_unpromoted_task(settings: Settings, customer: str) -> list[str]:
    """Delete what an interrupted run of the customer uploaded but never promoted."""
    return withdraw_unpromoted(open_store(settings.store, settings), settings, customer)
