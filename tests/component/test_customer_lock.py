"""The customer lock against a local directory and a real S3 API (moto's server mode).

Each test records when every holder entered and left, and asserts that no two stays overlap;
the fencing tests show that a holder that lost the lock can write nothing.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import EndpointConnectionError

from mme_factory.aws_clients import s3_client
from mme_factory.lease_fence import Fence, LeaseLost
from mme_factory.manifest import ManifestError, read_manifest
from mme_factory.settings import load_settings
from mme_factory.store import LocalStore, S3Store, StoreUnavailable
from tasks.deployment.customer_lock import customer_lock
from tasks.deployment.publish.promote import promote
from tasks.deployment.publish.withdraw_unpromoted import withdraw_unpromoted
from test_support.held_lock import lock_held_by_another_run
from test_support.moto_aws import moto_settings, remove_bucket

pytestmark = pytest.mark.integration
BUCKET = "lock-tests"
STALE_S = 2.0  # S3's LastModified has one-second resolution: leave room for it
KEY = "registry/acme.lock"


@pytest.fixture(params=["local", "s3"])
def store(request, tmp_path: Path, monkeypatch) -> Iterator[Any]:
    if request.param == "local":
        yield LocalStore(tmp_path / "bucket")
        return
    moto_server = request.getfixturevalue("moto_server")
    settings = moto_settings(monkeypatch, moto_server.url, tmp_path / "state")
    client = s3_client(settings)
    client.create_bucket(Bucket=BUCKET)
    try:
        yield S3Store(client, BUCKET, f"t{time.monotonic_ns()}")
    finally:
        remove_bucket(client, BUCKET)


class Stays:
    """When each holder entered and left the lock, to prove the stays never overlap."""

    def __init__(self) -> None:
        self.intervals: list[tuple[float, float, str]] = []
        self.errors: list[BaseException] = []
        self._guard = threading.Lock()

    def hold(self, store: Any, name: str, hold_s: float, wait_s: float) -> Callable[[], None]:
        def run() -> None:
            try:
                with customer_lock(store, "acme", wait_s=wait_s, stale_s=STALE_S):
                    entered = time.monotonic()
                    time.sleep(hold_s)
                    left = time.monotonic()
                with self._guard:
                    self.intervals.append((entered, left, name))
            except BaseException as error:  # the test thread reports every failure
                self.errors.append(error)

        return run

    def assert_one_at_a_time(self, holders: int) -> None:
        assert not self.errors, self.errors
        assert len(self.intervals) == holders
        ordered = sorted(self.intervals)
        for (_, left, first), (entered, _, second) in itertools.pairwise(ordered):
            assert entered >= left, f"{second} entered {left - entered:.2f} s before {first} left"


def run_threads(*targets: Callable[[], None], stagger_s: float = 0.0) -> None:
    threads = [threading.Thread(target=target) for target in targets]
    for thread in threads:
        thread.start()
        time.sleep(stagger_s)
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads)


def make_stale(store: Any, data: bytes) -> None:
    """Write a lock whose holder is gone and age it past the stale limit."""
    store.write_bytes(KEY, data)
    if isinstance(store, LocalStore):
        past = time.time() - 10 * STALE_S
        os.utime(store.root / KEY, (past, past))
    else:
        time.sleep(STALE_S + 1.5)


def test_a_holder_that_outlives_the_stale_limit_keeps_its_lock(store):
    stays = Stays()
    run_threads(
        stays.hold(store, "first", hold_s=2.5 * STALE_S, wait_s=30),
        stays.hold(store, "second", hold_s=0.1, wait_s=30),
        stagger_s=0.3,
    )
    stays.assert_one_at_a_time(holders=2)
    assert not [t for t in threading.enumerate() if t.name == f"renew {KEY}"]


def test_release_by_a_run_that_lost_the_lock_leaves_the_new_owners_lock(store):
    second_inside, second_may_leave = threading.Event(), threading.Event()

    def second() -> None:
        with customer_lock(store, "acme", wait_s=30, stale_s=STALE_S):
            second_inside.set()
            second_may_leave.wait(30)

    thread = threading.Thread(target=second)
    with (
        pytest.raises(ManifestError, match="another run took"),
        customer_lock(store, "acme", wait_s=5, stale_s=STALE_S),
    ):
        store.delete(KEY)  # what a breaker that misjudged the lock as stale used to do
        thread.start()
        assert second_inside.wait(30)
    try:
        assert store.exists(KEY), "the first run's exit removed the second run's lock"
        with (
            pytest.raises(ManifestError, match="locked by another run"),
            customer_lock(store, "acme", wait_s=0.3, stale_s=STALE_S),
        ):
            pass
    finally:
        second_may_leave.set()
        thread.join(timeout=30)
    assert not store.exists(KEY)


class MeetAfterReading:
    """A store whose first read in each thread waits for the other thread's first read."""

    def __init__(self, store: Any, parties: int) -> None:
        self._store = store
        self._barrier = threading.Barrier(parties, timeout=10)
        self._seen = threading.local()

    def _meet(self) -> None:
        if not getattr(self._seen, "done", False):
            self._seen.done = True
            with contextlib.suppress(threading.BrokenBarrierError):
                self._barrier.wait()

    def read_bytes(self, key: str) -> bytes:
        data = self._store.read_bytes(key)
        self._meet()
        return data

    def read_versioned(self, key: str) -> Any:
        found = self._store.read_versioned(key)
        self._meet()
        return found

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


def test_two_waiters_that_see_the_same_stale_lock_never_both_get_in(store):
    make_stale(store, json.dumps({"host": "gone", "pid": 1, "since_epoch": 0}).encode())
    meeting = MeetAfterReading(store, parties=2)
    stays = Stays()
    run_threads(
        stays.hold(meeting, "first", hold_s=1.0, wait_s=30),
        stays.hold(meeting, "second", hold_s=1.0, wait_s=30),
    )
    stays.assert_one_at_a_time(holders=2)


def test_an_empty_lock_is_broken_after_the_stale_limit(store):
    store.write_bytes(KEY, b"")  # a run that crashed between creating the lock and writing it
    with (
        pytest.raises(ManifestError, match="locked by another run"),
        customer_lock(store, "acme", wait_s=0.3, stale_s=STALE_S),
    ):
        pass
    started = time.monotonic()
    with customer_lock(store, "acme", wait_s=4 * STALE_S, stale_s=STALE_S):
        assert json.loads(store.read_bytes(KEY))["pid"] == os.getpid()
    assert time.monotonic() - started < 4 * STALE_S
    assert not store.exists(KEY)


class UnreachableOnce:
    """An S3 client whose first write of each key fails before reaching the server."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self._failed: set[str] = set()

    def put_object(self, **request: Any) -> Any:
        if request["Key"] not in self._failed:
            self._failed.add(request["Key"])
            raise EndpointConnectionError(endpoint_url="http://s3.invalid")
        return self._client.put_object(**request)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


def test_a_lock_write_that_cannot_reach_s3_is_retried(store):
    if not isinstance(store, S3Store):
        pytest.skip("an S3 client's connection error")
    flaky = S3Store(UnreachableOnce(store.client), store.bucket, store.prefix)
    with customer_lock(flaky, "acme", wait_s=10, stale_s=STALE_S):
        assert json.loads(store.read_bytes(KEY))["pid"] == os.getpid()
    assert not store.exists(KEY)


def test_of_many_conditional_replaces_of_one_version_exactly_one_wins(store):
    tag = store.create_exclusive(KEY, b"first")
    assert tag is not None
    assert store.create_exclusive(KEY, b"again") is None
    won: list[str] = []

    def replace(number: int) -> None:
        new_tag = store.replace_if(KEY, f"writer {number}".encode(), tag)
        if new_tag is not None:
            won.append(new_tag)

    run_threads(*[lambda n=n: replace(n) for n in range(6)])
    assert len(won) == 1
    current = store.read_versioned(KEY)
    assert current.tag == won[0] and current.data.startswith(b"writer ")
    assert not store.delete_if(KEY, tag)
    assert store.exists(KEY)
    assert store.delete_if(KEY, won[0])
    assert store.read_versioned(KEY) is None
    assert store.replace_if(KEY, b"late", won[0]) is None
    assert not store.exists(KEY)


class Partition:
    """A store that a run reaches only while the network is up: cut, every call fails."""

    def __init__(self, store: Any) -> None:
        self._store = store
        self.cut = False

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._store, name)
        if not callable(attribute):
            return attribute

        def call(*args: Any, **kwargs: Any) -> Any:
            if self.cut:
                raise StoreUnavailable("the network is down")
            return attribute(*args, **kwargs)

        return call


CLASSIFIER_PREFIX = "mme/dev-mme-classifier/acme/classifier/"


def classifier_entry(version: int) -> dict[str, Any]:
    target = f"acme/classifier/v{version}.tar.gz"
    return {"endpoint": "dev-mme-classifier", "version": version, "targets": {"classifier": target}}


def test_a_run_that_lost_its_lock_writes_nothing_and_the_manifest_points_at_existing_tarballs(
    store, tmp_path
):
    """Run A loses the lock in a partition; run B takes it over, withdraws A's upload and
    promotes its own. When A's network comes back, none of A's writes goes through."""
    settings = load_settings(environ={"MME_FACTORY_STATE_DIR": str(tmp_path / "state")})
    partitioned = Partition(store)
    with (
        pytest.raises(ManifestError, match="the lock could not be renewed"),
        customer_lock(partitioned, "acme", wait_s=5, stale_s=STALE_S) as first,
    ):
        store.write_bytes(f"{CLASSIFIER_PREFIX}v1.tar.gz", b"first run's model")
        partitioned.cut = True
        with customer_lock(store, "acme", wait_s=8 * STALE_S, stale_s=STALE_S) as second:
            assert second.generation > first.generation
            assert withdraw_unpromoted(store, settings, "acme", second.fence) == [
                f"{CLASSIFIER_PREFIX}v1.tar.gz"
            ]
            store.write_bytes(f"{CLASSIFIER_PREFIX}v2.tar.gz", b"second run's model")
            promote(store, "acme", {"classifier": classifier_entry(2)}, fence=second.fence)
        partitioned.cut = False
        store.write_bytes(f"{CLASSIFIER_PREFIX}v1.tar.gz", b"first run's model, again")
        with pytest.raises(LeaseLost):
            promote(partitioned, "acme", {"classifier": classifier_entry(1)}, fence=first.fence)
        with pytest.raises(LeaseLost):
            withdraw_unpromoted(partitioned, settings, "acme", first.fence)
        with pytest.raises(LeaseLost):
            first.ensure_held()
    served = read_manifest(store, "acme").models["classifier"]
    assert served.version == 2
    assert store.exists(f"{CLASSIFIER_PREFIX}v2.tar.gz")


def test_a_manifest_written_under_a_later_generation_refuses_an_earlier_holder(store):
    """The fence alone stops a stalled holder, even before its lock is looked at."""
    with customer_lock(store, "acme", wait_s=5, stale_s=STALE_S) as holder:
        stalled = Fence(holder.fence.lock_key, holder.fence.owner, holder.generation)
        store.write_bytes(f"{CLASSIFIER_PREFIX}v1.tar.gz", b"model")
        promote(store, "acme", {"classifier": classifier_entry(1)}, fence=holder.fence)
    with customer_lock(store, "acme", wait_s=5, stale_s=STALE_S) as later:
        assert later.generation == holder.generation + 1
        promote(store, "acme", {"classifier": classifier_entry(1)}, fence=later.fence)
        with pytest.raises(LeaseLost, match="written under lock generation"):
            promote(store, "acme", {"classifier": classifier_entry(1)}, fence=stalled)


def test_a_waiter_whose_clock_runs_ahead_never_takes_a_live_lock(store, monkeypatch):
    """Staleness is judged by the store's clock: an hour of skew on the waiter changes nothing."""
    with lock_held_by_another_run(store, "acme", STALE_S):
        wall_clock = time.time
        monkeypatch.setattr(time, "time", lambda: wall_clock() + 3600)
        with (
            pytest.raises(ManifestError, match="locked by another run"),
            customer_lock(store, "acme", wait_s=2 * STALE_S, stale_s=STALE_S),
        ):
            pass
        monkeypatch.undo()
    assert not store.exists(KEY)
