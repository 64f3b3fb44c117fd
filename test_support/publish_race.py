"""Two onboardings and an offboarding of one customer, raced with stalls, partitions and skew.

Each onboarding does what the onboarding flow does once training has finished, step by step with
the same functions: take the customer lock, look for the tombstone, withdraw unpromoted uploads,
number a version, package into its run directory, upload, wait for a smoke test, promote; on a
failure withdraw its uploads and clean up if the customer was offboarded. Before any store call
an onboarding may stall for longer than the lock's stale limit, its heartbeat cut off as in a
network partition, so that its lock is taken over while it sleeps and it wakes up as a run that
lost its lease; every thread's wall clock is skewed by up to `skew_s` either way.

After each round the invariants are checked:
- the manifest key is written in the order of the writers' lock generations (at most one run
  writes at a time: a run that lost its lock never writes after the run that took it over);
- every manifest written pointed at tarballs that existed when it was written;
- the offboarded customer holds nothing: no tarballs, version record, gate evidence, run
  directories or managed data, and its manifest key holds a tombstone (an offboarding that
  failed part-way, having lost its own lock, is run again first, as a person would).
"""

from __future__ import annotations

import importlib
import json
import random
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from unittest import mock

from mme_factory.errors import MmeFactoryError
from mme_factory.manifest import CustomerOffboarded
from mme_factory.naming import manifest_key, model_data_prefix, version_record_key
from mme_factory.settings import Settings, load_settings
from mme_factory.store import ArtifactStore, LocalStore, StoreUnavailable
from tasks.deployment.customer_lock import customer_lock
from tasks.deployment.offboard.offboard_customer import offboard_customer
from tasks.deployment.offboard.offboarded_run import clean_up_if_offboarded, discard_if_offboarded
from tasks.deployment.publish.promote import promote
from tasks.deployment.publish.publish_models import withdraw_uploads
from tasks.deployment.publish.register_mme import Registration
from tasks.deployment.publish.withdraw_unpromoted import withdraw_unpromoted
from tasks.deployment.version_numbers import assign_version

CUSTOMER = "acme"
ENDPOINT = "race-mme-classifier"
WRITES = ("write_bytes", "create_exclusive", "replace_if")
HEARTBEAT_PREFIX = "renew "
# The module, not the function the package exports under the same name.
OFFBOARDING = importlib.import_module("tasks.deployment.offboard.offboard_customer")


@dataclass(frozen=True)
class RaceOptions:
    stale_s: float = 1.0
    stall_probability: float = 0.04  # per store call of an onboarding
    stall_s: float = 2.5  # longer than the stale limit: the lock is taken over meanwhile
    max_delay_s: float = 0.02  # before every store call
    max_start_s: float = 1.5  # each actor starts after a random delay up to this
    skew_s: float = 600.0
    lock_wait_s: float = 30.0


@dataclass
class RoundResult:
    seed: int
    outcomes: dict[str, str]
    violations: list[str]
    manifest_writes: int
    stalls: int
    seconds: float


@dataclass
class Observations:
    """What the store saw during one round, shared by every actor's store."""

    store: ArtifactStore
    fences: list[int] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    stalls: int = 0
    guard: threading.Lock = field(default_factory=threading.Lock)

    def manifest_written(self, data: bytes, actor: str) -> None:
        document = json.loads(data)
        with self.guard:
            fence = int(document.get("fence") or 0)
            if self.fences and fence < self.fences[-1]:
                self.violations.append(
                    f"{actor} wrote the manifest under generation {fence} after generation "
                    f"{self.fences[-1]} had written it"
                )
            self.fences.append(fence)
            for entry in (document.get("models") or {}).values():
                for target in (entry.get("targets") or {}).values():
                    key = model_data_prefix(entry["endpoint"]) + target
                    if not self.store.exists(key):
                        self.violations.append(f"{actor} promoted {target}, whose tarball is gone")


class RaceStore:
    """One actor's view of the store: random delays, stalls with a partition, observed writes."""

    def __init__(
        self, observations: Observations, actor: str, rng: random.Random, options: RaceOptions
    ) -> None:
        self._observations, self._actor = observations, actor
        self._rng, self._options = rng, options
        self._rng_guard = threading.Lock()
        self._partitioned = False

    def _draw(self) -> tuple[float, bool]:
        with self._rng_guard:
            delay = self._rng.uniform(0, self._options.max_delay_s)
            return delay, self._rng.random() < self._options.stall_probability

    def _before_call(self) -> None:
        if threading.current_thread().name.startswith(HEARTBEAT_PREFIX):
            if self._partitioned:
                raise StoreUnavailable(f"{self._actor}: partitioned")
            return
        delay, stall = self._draw()
        if stall:
            with self._observations.guard:
                self._observations.stalls += 1
            self._partitioned = True
            time.sleep(self._options.stall_s)
            self._partitioned = False
        time.sleep(delay)

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._observations.store, name)
        if not callable(attribute) or name == "uri":  # no call to the store
            return attribute

        def call(*args: Any, **kwargs: Any) -> Any:
            self._before_call()
            result = attribute(*args, **kwargs)
            written = name in WRITES and (name == "write_bytes" or result is not None)
            if written and args[0] == manifest_key(CUSTOMER):
                self._observations.manifest_written(args[1], self._actor)
            return result

        return call


class SkewedClocks:
    """`time.time` with a skew of each thread's own."""

    def __init__(self) -> None:
        self._real = time.time
        self._local = threading.local()

    def set(self, skew_s: float) -> None:
        self._local.skew = skew_s

    def __call__(self) -> float:
        return self._real() + getattr(self._local, "skew", 0.0)


@dataclass
class Race:
    root: Path
    options: RaceOptions
    rng: random.Random
    clocks: SkewedClocks
    observations: Observations = field(init=False)
    settings: Settings = field(init=False)

    def __post_init__(self) -> None:
        self.settings = load_settings(
            environ={
                "MME_FACTORY_STATE_DIR": str(self.root / "state"),
                "MME_FACTORY_STORE": str(self.root / "bucket"),
                "MME_FACTORY_ENV": "race",
                "MME_FACTORY_SAGEMAKER__LOCK_WAIT_S": str(self.options.lock_wait_s),
                "MME_FACTORY_SAGEMAKER__LOCK_STALE_S": str(self.options.stale_s),
            }
        )
        self.observations = Observations(LocalStore(self.root / "bucket"))

    def store_for(self, actor: str) -> RaceStore:
        return RaceStore(self.observations, actor, random.Random(self.rng.random()), self.options)

    def trained_run(self, actor: str) -> Path:
        """What training leaves: a run directory naming data in the managed store."""
        store = self.observations.store
        store.write_bytes(f"customers/{CUSTOMER}/intents.csv", b"text,intent\n")
        run = self.settings.runs_dir / CUSTOMER / f"run-{actor}"
        (run / "classifier").mkdir(parents=True, exist_ok=True)
        (run / "classifier" / "model.pt").write_bytes(b"weights")
        record = {"customer": CUSTOMER, "run_id": run.name}
        record["data_uri"] = store.uri(f"customers/{CUSTOMER}")
        (run / "run.json").write_text(json.dumps(record), encoding="utf-8")
        return run

    def start_after_a_while(self) -> None:
        with self.observations.guard:
            delay = self.rng.uniform(0, self.options.max_start_s)
            skew = self.rng.uniform(-self.options.skew_s, self.options.skew_s)
        self.clocks.set(skew)
        time.sleep(delay)

    def onboard(self, actor: str, run: Path) -> str:
        """The onboarding flow's steps after training; how it ended."""
        store: Any = self.store_for(actor)
        settings, options = self.settings, self.options
        self.start_after_a_while()
        registrations: list[Registration] = []
        try:
            with customer_lock(store, CUSTOMER, options.lock_wait_s, options.stale_s) as lease:
                discard_if_offboarded(store, CUSTOMER, run)
                try:
                    withdraw_unpromoted(store, settings, CUSTOMER, lease.fence)
                    version = assign_version(store, settings, CUSTOMER, lease.fence)
                    (run / "packages").mkdir(exist_ok=True)
                    (run / "packages" / f"v{version}.tar.gz").write_bytes(b"model")
                    lease.ensure_held()
                    registrations.append(self.upload(store, version))
                    store.exists(manifest_key(CUSTOMER))  # the smoke test's time
                    lease.ensure_held()
                    entry = {
                        "endpoint": ENDPOINT,
                        "version": version,
                        "targets": {"classifier": registrations[0].target_model},
                    }
                    promote(store, CUSTOMER, {"classifier": entry}, fence=lease.fence)
                except Exception as error:
                    withdraw_uploads.fn(registrations, settings)
                    offboarded = clean_up_if_offboarded(self.observations.store, CUSTOMER, run)
                    if offboarded is not None:
                        raise CustomerOffboarded(CUSTOMER, offboarded) from error
                    raise
        except Exception as error:  # the flow run fails; its clean-up ran above
            return f"{type(error).__name__}: {error}"
        return "promoted"

    def upload(self, store: Any, version: int) -> Registration:
        target = f"{CUSTOMER}/classifier/v{version}.tar.gz"
        store.write_bytes(model_data_prefix(ENDPOINT) + target, b"model")
        return Registration(
            customer=CUSTOMER,
            kind="classifier",
            role=None,
            version=version,
            endpoint=ENDPOINT,
            target_model=target,
            model_data_url=store.uri(model_data_prefix(ENDPOINT)),
            sha256="0" * 64,
            size_bytes=5,
            code_version="race",
            uploaded=True,
            endpoint_created=False,
        )

    def offboard(self) -> str:
        store = self.store_for("offboarding")
        self.start_after_a_while()
        with mock.patch.object(OFFBOARDING, "open_store", lambda *_: store):
            try:
                offboard_customer(self.settings, CUSTOMER)
            except MmeFactoryError as error:
                return f"{type(error).__name__}: {error}"
        return "offboarded"

    def leftovers(self) -> list[str]:
        """What the offboarded customer still holds."""
        store = self.observations.store
        found = [key for key in store.list_keys("mme/") if f"/{CUSTOMER}/" in key]
        found += list(store.list_keys(f"customers/{CUSTOMER}/"))
        found += list(store.list_keys(f"gate-evidence/{CUSTOMER}/"))
        if store.exists(version_record_key(CUSTOMER)):
            found.append(version_record_key(CUSTOMER))
        runs = self.settings.runs_dir / CUSTOMER
        if runs.exists():
            found += [str(path) for path in runs.rglob("*")] or [str(runs)]
        document = store.read_versioned(manifest_key(CUSTOMER))
        if document is None or json.loads(document.data).get("offboarded") is not True:
            found.append(f"{manifest_key(CUSTOMER)} is not a tombstone")
        return found


def outcome_of(name: str, actor: Callable[[], str], outcomes: dict[str, str]) -> None:
    try:
        outcomes[name] = actor()
    except Exception as error:  # a bug the round reports, not a way a run may end
        outcomes[name] = f"crashed: {type(error).__name__}: {error}"


@contextmanager
def skewed_clocks() -> Iterator[SkewedClocks]:
    clocks = SkewedClocks()
    with mock.patch.object(time, "time", clocks):
        yield clocks


def run_round(root: Path, seed: int, options: RaceOptions) -> RoundResult:
    """One round: two onboardings and an offboarding started together; the invariants."""
    started = time.monotonic()
    with skewed_clocks() as clocks:
        race = Race(root, options, random.Random(seed), clocks)
        runs = {actor: race.trained_run(actor) for actor in ("first", "second")}
        outcomes: dict[str, str] = {}
        actors: dict[str, Callable[[], str]] = {
            actor: (lambda actor=actor: race.onboard(actor, runs[actor])) for actor in runs
        }
        actors["offboarding"] = race.offboard
        threads = [
            threading.Thread(target=outcome_of, args=(name, actor, outcomes), name=name)
            for name, actor in actors.items()
        ]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 4 * options.lock_wait_s
        for thread in threads:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
    violations = list(race.observations.violations)
    if any(thread.is_alive() for thread in threads):
        violations.append("an actor did not finish in time")
    violations += [f"{name} {how}" for name, how in outcomes.items() if how.startswith("crashed")]
    if outcomes.get("offboarding") != "offboarded":
        # As a person would: an offboarding that failed part-way is run again, and finishes.
        offboard_customer(race.settings, CUSTOMER)
        outcomes["offboarding"] += "; offboarded when run again"
    violations += [f"left after the offboarding: {item}" for item in race.leftovers()]
    return RoundResult(
        seed,
        outcomes,
        violations,
        len(race.observations.fences),
        race.observations.stalls,
        time.monotonic() - started,
    )
