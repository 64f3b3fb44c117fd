"""Withdraw what an interrupted run uploaded but never promoted.

A run that fails withdraws its own uploads; a run that is killed cannot. The next run of the
customer, holding the customer lock, deletes every TargetModel of the customer that the
manifest does not name as current, previous or retired: those were never served through the
manifest, and their version numbers are not reused.

What is deleted is listed first, then the lock is confirmed to be still this run's: a run
that took the lock over did so after the listing, so nothing it uploads is among the deleted.
"""

from __future__ import annotations

import logging

from prefect import task
from prefect.cache_policies import NO_CACHE

from mme_factory.lease_fence import Fence
from mme_factory.manifest import read_manifest, uploaded_target_models
from mme_factory.records import CustomerManifest
from mme_factory.settings import Settings
from mme_factory.store import ArtifactStore, open_store

logger = logging.getLogger("mme_factory.withdraw")


def promoted_targets(manifest: CustomerManifest) -> set[str]:
    """Every TargetModel the manifest names: current, in history, or retired by a rollback."""
    return {
        target for entry in manifest.named_entries() for target in (entry.targets or {}).values()
    }


def withdraw_unpromoted(
    store: ArtifactStore, settings: Settings, customer: str, fence: Fence | None = None
) -> list[str]:
    """Delete the customer's TargetModels no manifest entry names; call under the lock."""
    kept = promoted_targets(read_manifest(store, customer, tombstone_as_empty=True))
    # Listed in full first: deleting while S3 still pages the listing could skip keys.
    uploaded = list(uploaded_target_models(store, settings.env, customer))
    removed = [key for key, target_model in uploaded if target_model not in kept]
    if fence is not None:
        fence.confirm(store, customer)
    for key in removed:
        store.delete(key)
    if removed:
        logger.warning(
            "withdrew %d unpromoted upload(s) of %s: %s", len(removed), customer, removed
        )
    return removed


@task(name="withdraw-unpromoted", cache_policy=NO_CACHE)
def withdraw_unpromoted_task(
    settings: Settings, customer: str, fence: Fence | None = None
) -> list[str]:
    """Delete what an interrupted run of the customer uploaded but never promoted."""
    return withdraw_unpromoted(open_store(settings.store, settings), settings, customer, fence)
