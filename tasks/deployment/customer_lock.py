"""The customer lock (`registry/{customer}.lock`): one run at a time changes a customer.

The lock is a lease with an owner token and a generation, one above any earlier holder's. Its
holder renews it from a heartbeat thread for as long as it works and deletes it only while it
still holds the version it last wrote. A lock that has not been written for the stale limit
(its run died, or stalled) is taken over with a conditional replace: of several waiters that
saw the same stale version, exactly one gets the lock. Staleness is judged by the store's own
clock (the lock's modification time against the store's time now), never the waiter's, so a
skewed host cannot take a live lock. Every change is conditional on the version last seen, so
no run removes or overwrites another's lock.

A run whose generation is more than one above the manifest's fence (it took the lock over
from a holder that may still be running) raises the fence to its generation before anything
else (`fenced_manifest`), so the run it replaced, should it wake, can write nothing more; the
heartbeat records the loss and `ensure_held` stops the holder's remaining work.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from mme_factory.errors import StoreError
from mme_factory.lease_fence import Fence, LeaseLost, lock_generation, parse_lock
from mme_factory.manifest import ManifestError, written_fence
from mme_factory.naming import lock_key
from mme_factory.settings.sagemaker import SageMakerSettings
from mme_factory.store import ArtifactStore, StoreUnavailable, VersionedObject
from tasks.deployment.fenced_manifest import raise_fence

RENEWALS_PER_STALE_LIMIT = 4
RELEASE_ATTEMPTS = 3

logger = logging.getLogger("mme_factory.lock")


class Lease:
    """One run's hold on one lock key."""

    def __init__(
        self, store: ArtifactStore, key: str, stale_s: float, floor: Callable[[], int]
    ) -> None:
        """`floor`: the highest generation any earlier holder is known to have had."""
        self.store, self.key, self.stale_s = store, key, stale_s
        self.token = uuid.uuid4().hex
        self.since = datetime.now(UTC).isoformat(timespec="seconds")
        self.floor = floor
        self.floor_seen = 0  # the floor when the lock was last tried
        self.generation = 0
        self.tag: str | None = None
        self.lost = ""  # why the lease was lost while held
        self.holder: dict[str, Any] | None = None  # the other run's record, while waiting
        self._guard = threading.Lock()
        self._stop = threading.Event()
        self._heartbeat: threading.Thread | None = None
        self._renewed = time.monotonic()

    def _record(self) -> bytes:
        renewed = datetime.now(UTC).isoformat(timespec="seconds")
        return json.dumps(
            {"owner": self.token, "generation": self.generation}
            | {"host": socket.gethostname(), "pid": os.getpid()}
            | {"since": self.since, "renewed_at": renewed}
        ).encode()

    @property
    def fence(self) -> Fence:
        return Fence(self.key, self.token, self.generation)

    def try_take(self) -> bool:
        """Create the lock, or take it over when it is stale; False while another run holds it."""
        self.floor_seen = self.floor()
        self.generation = self.floor_seen + 1
        self.tag = self.store.create_exclusive(self.key, self._record())
        if self.tag is not None:
            return True
        current = self.store.read_versioned(self.key)
        if current is None:
            return False  # released meanwhile: the next attempt creates it
        if self._is_ours(current):
            return True
        self.holder = parse_lock(current.data)
        if self.store.clock() - current.modified > self.stale_s:
            self.generation = max(self.floor_seen, lock_generation(self.holder)) + 1
            self.tag = self.store.replace_if(self.key, self._record(), current.tag)
        return self.tag is not None

    def _is_ours(self, current: VersionedObject) -> bool:
        """An earlier write of ours that went through although its answer was lost."""
        record = parse_lock(current.data)
        if record.get("owner") == self.token:
            self.tag, self.generation = current.tag, lock_generation(record)
            return True
        return False

    def ensure_held(self) -> None:
        """Raise LeaseLost once the heartbeat found the lock taken over: stop the run's work."""
        if self.lost:
            raise LeaseLost(f"{self.store.uri(self.key)}: {self.lost}; nothing more was done")

    def start_renewing(self) -> None:
        self._renewed = time.monotonic()
        self._heartbeat = threading.Thread(
            target=self._renew_until_released, name=f"renew {self.key}", daemon=True
        )
        self._heartbeat.start()

    def _renew_until_released(self) -> None:
        while not self._stop.wait(self.stale_s / RENEWALS_PER_STALE_LIMIT):
            with self._guard:
                self._renew()
            if self.lost:
                logger.error("%s: %s", self.store.uri(self.key), self.lost)
                return

    def _renew(self) -> None:
        assert self.tag is not None
        try:
            tag = self.store.replace_if(self.key, self._record(), self.tag)
            if tag is None:
                current = self.store.read_versioned(self.key)
                if current is None or not self._is_ours(current):
                    self.lost = "another run took the lock over while this run held it"
                    return
                tag = self.tag
        except StoreError as error:
            if time.monotonic() - self._renewed > self.stale_s:
                self.lost = f"the lock could not be renewed for {self.stale_s:.0f} s: {error}"
            return
        self.tag, self._renewed = tag, time.monotonic()

    def release(self) -> None:
        """Stop renewing; delete the lock only if it is still the version this run wrote."""
        self._stop.set()
        if self._heartbeat is not None:
            self._heartbeat.join(timeout=60)
        with self._guard:
            if self.tag is None:
                return
            for attempt in range(RELEASE_ATTEMPTS):
                try:
                    if self.store.delete_if(self.key, self.tag):
                        return
                    current = self.store.read_versioned(self.key)
                    if current is None:
                        return  # our delete landed though its answer was lost, or it was taken
                    if self._is_ours(current):
                        continue
                    self.lost = self.lost or "another run took the lock over while this run held it"
                    return
                except StoreUnavailable as error:
                    logger.warning("releasing %s: %s", self.store.uri(self.key), error)
                    time.sleep(0.5 * 2**attempt)
            logger.warning("%s stays until it is stale", self.store.uri(self.key))


@contextmanager
def customer_lock(
    store: ArtifactStore,
    customer: str,
    wait_s: float,
    stale_s: float = SageMakerSettings.model_fields["lock_stale_s"].default,
) -> Iterator[Lease]:
    """Hold `registry/{customer}.lock`; wait up to `wait_s` for another run to release it.

    Yields the lease: its `fence` goes with every manifest write, and `ensure_held` between
    steps stops a run that lost the lock.
    """
    lease = Lease(store, lock_key(customer), stale_s, lambda: written_fence(store, customer))
    deadline = time.monotonic() + wait_s
    unavailable: StoreUnavailable | None = None
    while True:
        try:
            if lease.try_take():
                break
            unavailable = None
        except StoreUnavailable as error:  # as if another run had won this attempt
            logger.warning("taking %s: %s", store.uri(lease.key), error)
            unavailable = error
        if time.monotonic() >= deadline:
            if unavailable is not None:
                raise ManifestError(
                    f"cannot take the lock of customer {customer}: {unavailable}"
                ) from None
            raise ManifestError(
                f"customer {customer} is locked by another run ({lease.holder or 'unreadable'}); "
                f"waited {wait_s:.0f} s. Retry when it has finished."
            )
        time.sleep(min(1.0, max(0.05, deadline - time.monotonic())))
    lease.start_renewing()
    failed = True
    try:
        if lease.generation > lease.floor_seen + 1:
            # A holder since the manifest was last written may still be running: fence it out.
            raise_fence(store, customer, lease.fence)
        yield lease
        failed = False
    finally:
        lease.release()
        if lease.lost and not failed:
            raise ManifestError(
                f"customer {customer}: {lease.lost}; check its manifest before running again"
            )
