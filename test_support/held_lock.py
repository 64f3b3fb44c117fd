"""A customer lock held by another run (a thread standing for it) while a test's block runs."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from mme_factory.settings.sagemaker import SageMakerSettings
from mme_factory.store import ArtifactStore
from tasks.deployment.customer_lock import customer_lock

TAKE_WAIT_S = 10.0
HOLD_LIMIT_S = 60.0


@contextmanager
def lock_held_by_another_run(
    store: ArtifactStore,
    customer: str,
    stale_s: float = SageMakerSettings.model_fields["lock_stale_s"].default,
) -> Iterator[None]:
    held, release = threading.Event(), threading.Event()

    def other_run() -> None:
        with customer_lock(store, customer, wait_s=TAKE_WAIT_S, stale_s=stale_s):
            held.set()
            release.wait(HOLD_LIMIT_S)

    thread = threading.Thread(target=other_run)
    thread.start()
    try:
        assert held.wait(TAKE_WAIT_S), "the other run never took the lock"
        yield
    finally:
        release.set()
        thread.join(timeout=HOLD_LIMIT_S)
