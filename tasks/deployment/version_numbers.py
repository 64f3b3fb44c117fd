"""Version numbers: one per onboarding run of a customer, never handed out twice.

A run's uploads can be withdrawn (a failed smoke test, a killed run), and then nothing under the
endpoints names their version any more; yet an endpoint may still hold those bytes under that
key. So the highest number ever assigned is recorded in `registry/{customer}.version` before
anything is uploaded, and the next run is assigned one above it. Offboarding deletes that record
and keeps the number in the customer's tombstone, so a customer onboarded again continues after
it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime

from mme_factory.lease_fence import Fence
from mme_factory.manifest import (
    ManifestError,
    read_manifest,
    read_tombstone,
    uploaded_target_models,
)
from mme_factory.naming import TargetModelKey, version_record_key
from mme_factory.settings import Settings
from mme_factory.store import ArtifactStore, VersionedObject

ASSIGN_ATTEMPTS = 50


def recorded_highest(store: ArtifactStore, key: str, found: VersionedObject | None) -> int:
    """The highest version the record says was ever assigned, 0 when there is no record."""
    if found is None:
        return 0
    try:
        return int(json.loads(found.data)["highest"])
    except (ValueError, TypeError, KeyError, RecursionError) as error:
        raise ManifestError(
            f"{store.uri(key)} is unreadable ({error}): restore it, or write "
            '{"highest": N} with N at least the highest version ever uploaded for the customer'
        ) from None


def published_highest(store: ArtifactStore, settings: Settings, customer: str) -> int:
    """The highest version on any endpoint, named by the manifest or kept by the customer's
    tombstone (a lower bound)."""
    highest = read_manifest(store, customer, tombstone_as_empty=True).highest_named_version()
    offboarded = read_tombstone(store, customer)
    if offboarded is not None:
        highest = max(highest, offboarded.highest_version)
    for _, target_model in uploaded_target_models(store, settings.env, customer):
        try:
            highest = max(highest, TargetModelKey.parse(target_model).version)
        except ValueError:
            continue
    return highest


def assign_version(
    store: ArtifactStore, settings: Settings, customer: str, fence: Fence | None = None
) -> int:
    """One past any version the customer ever had; recorded before it is used.

    The record is changed only if no one changed it since it was read, so even two runs that
    are not kept apart by the customer lock never get the same number; with a fence, only
    while this run holds the lock.
    """
    published = published_highest(store, settings, customer)
    assigned = raise_record(store, customer, lambda recorded: max(recorded, published) + 1, fence)
    assert assigned is not None
    return assigned


def keep_highest(store: ArtifactStore, customer: str, highest: int) -> None:
    """Record that versions up to `highest` were used, unless the record already says more."""
    raise_record(store, customer, lambda recorded: None if recorded >= highest else highest)


def raise_record(
    store: ArtifactStore,
    customer: str,
    new_highest: Callable[[int], int | None],
    fence: Fence | None = None,
) -> int | None:
    """Write the highest number `new_highest` makes of the recorded one (None: leave it), only
    if no one changed the record since it was read; the number written."""
    key = version_record_key(customer)
    for _ in range(ASSIGN_ATTEMPTS):
        found = store.read_versioned(key)
        if fence is not None:
            fence.confirm(store, customer)
        highest = new_highest(recorded_highest(store, key, found))
        if highest is None:
            return None
        record = {"customer": customer, "highest": highest, "assigned_at": _now()}
        data = json.dumps(record).encode() + b"\n"
        if found is None:
            written = store.create_exclusive(key, data)
        else:
            written = store.replace_if(key, data, found.tag)
        if written is not None:
            return highest
    raise ManifestError(
        f"{store.uri(key)} was changed by other runs {ASSIGN_ATTEMPTS} times in a row; run again"
    )


def _now() -> str:
    return datetime.now(UTC).isoformat()
