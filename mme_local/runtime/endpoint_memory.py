"""An endpoint's memory budget: readings of Triton's memory, reservations of loads, evictions.

Memory is the proportional share (PSS) of Triton and its stubs, read in a worker thread: by the
watcher every half second, and by a load or an unload once it is done, before the bookkeeping
changes, so a finished load is never counted neither as reserved nor as used, and an unloaded
model is not forgotten before a reading without it. One reading runs at a time: callers that ask
while one runs share the next, which starts after it, so a reading never predates its request.
Readings are kept only if they started after the one kept: a slow old one never replaces a newer.

Memory may exceed the budget by one model while loads are in flight, as SageMaker's own cache
does: a load starts when used + reserved for loads in flight + its reservation <= budget + one
model (the largest footprint measured on the endpoint, or the load's own reservation if larger).
Only a load that does not fit that evicts before it starts: idle least-recently-used models,
as many as its shortfall, then it waits for their stubs to exit and for busy models to drain,
never evicting a model with requests in flight or one being loaded. Once a load is done, idle
LRU models are evicted until used + reserved <= budget: the victims are chosen after the load,
so the requests served while it loaded count, and their unloads overlap the next loads, whose
admission counts a model being unloaded until its stub is gone. A load that waits longer than
the load wait limit gives up with a retryable 503. A model alone on the endpoint (nothing else
loaded, loading or unloading) loads even when it alone exceeds the budget.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import time
from collections.abc import Callable, Collection
from pathlib import Path

from mme_factory.triton import TritonError
from mme_local.aws_errors import service_unavailable
from mme_local.runtime.memory_ledger import ChangeSignal, MemoryLedger
from mme_local.runtime.metrics import Metrics
from mme_local.runtime.model_cache import LoadedModel, ModelCache
from mme_local.runtime.model_server import ModelServer, ServerMemory
from mme_local.runtime.model_usage import SlidingHourCount

RECHECK_S = 0.5
UNLOAD_READING_S = 0.1


class EndpointMemory:
    def __init__(
        self,
        endpoint: str,
        server: ModelServer,
        cache: ModelCache,
        models_dir: Path,
        budget_bytes: int,
        protected: Callable[[], set[str]],
        largest_footprint: Callable[[], int],
        metrics: Metrics,
    ) -> None:
        """`protected()` names the models no eviction may pick: those being loaded, and those
        whose callers are about to use them; `largest_footprint()` is the most memory one
        model has taken on this endpoint (0 before any was measured)."""
        self.endpoint, self.server, self.cache = endpoint, server, cache
        self.models_dir, self.protected, self.metrics = models_dir, protected, metrics
        self.largest_footprint = largest_footprint
        self.ledger = MemoryLedger(budget_bytes)
        self.changed = ChangeSignal()
        self.evictions = SlidingHourCount()
        self.peak_pss_bytes = self.peak_rss_bytes = 0
        self._unloads: dict[str, asyncio.Task[None]] = {}
        self._estimates: dict[str, Callable[[], int]] = {}  # loads in flight -> their estimate
        self._reading: asyncio.Task[ServerMemory] | None = None  # the one running
        self._next_reading: asyncio.Task[ServerMemory] | None = None  # starts after it

    @property
    def budget_bytes(self) -> int:
        return self.ledger.budget_bytes

    @property
    def reading(self) -> ServerMemory:
        """The latest reading of the server's memory."""
        return self.ledger.reading

    def reserved_for(self, name: str) -> int:
        """What the load of `name` has reserved (0 when none is in flight)."""
        return self.ledger.reserved.get(name, 0)

    async def refresh(self) -> ServerMemory:
        """A reading of the server's memory that starts after this call, kept if the newest."""
        if self._next_reading is None or self._next_reading.done():
            self._next_reading = asyncio.create_task(self._read_after(self._reading))
            self._next_reading.add_done_callback(_retrieve_exception)
        return await asyncio.shield(self._next_reading)

    async def _read_after(self, running: asyncio.Task[ServerMemory] | None) -> ServerMemory:
        if running is not None:
            await asyncio.wait([running])
        self._next_reading, self._reading = None, asyncio.current_task()  # type: ignore[assignment]
        try:
            reading = await self.server.memory()
        finally:
            if self._reading is asyncio.current_task():
                self._reading = None
        if self.ledger.publish(reading):
            self.peak_pss_bytes = max(self.peak_pss_bytes, reading.pss_bytes)
            self.peak_rss_bytes = max(self.peak_rss_bytes, reading.rss_bytes)
            self.changed.notify()
        return reading

    async def admit(self, name: str, estimate: Callable[[], int], wait_s: float) -> None:
        """Reserve `estimate()` bytes for loading `name`, once they fit under budget + one model.

        The estimate is asked again at each try and, once admitted, whenever a finished load
        teaches the endpoint what its models cost (`revise_reservations`).
        """
        deadline = time.monotonic() + wait_s
        while True:
            changed = self.changed.watch()
            async with self.cache.changing():
                if self._reserve_or_make_room(name, estimate()):
                    self._estimates[name] = estimate
                    return
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                busy = sum(entry.in_flight > 0 for entry in self.cache.models())
                raise service_unavailable(
                    f"endpoint {self.endpoint}: no memory for another model within {wait_s:.0f} s "
                    f"({busy} loaded models busy, {len(self.ledger.reserved)} loads in flight); "
                    "retry"
                )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), min(remaining, RECHECK_S))

    def limit_bytes(self, reservation: int) -> int:
        """What used + reserved may reach when a load of `reservation` bytes starts."""
        return self.ledger.budget_bytes + max(self.largest_footprint(), reservation)

    def _reserve_or_make_room(self, name: str, reservation: int) -> bool:
        ledger = self.ledger
        # Triton replaces a loaded model of the same name (its key now holds other bytes).
        replaced = self.cache.peek(name)
        committed = ledger.committed_bytes() - (replaced.memory_bytes if replaced else 0)
        alone = not ledger.reserved and not ledger.unloading
        alone = alone and all(entry.name == name for entry in self.cache.models())
        limit = self.limit_bytes(reservation)
        if alone or committed + reservation <= limit:
            ledger.reserved[name] = reservation
            return True
        shortfall = committed + reservation - limit - ledger.freeing_bytes()
        while shortfall > 0:
            victim = self.cache.least_recently_used_idle(exclude=self.protected())
            if victim is None:
                break
            self._start_eviction(victim)
            shortfall -= victim.memory_bytes
        return False

    def revise_reservations(self) -> None:
        """Raise the reservations of loads in flight to their estimates as they stand now.

        The first loads of an endpoint reserve a guess from their tarballs; once one is
        measured, those still loading are counted at what their kind is now known to cost.
        """
        for name, estimate in self._estimates.items():
            if name in self.ledger.reserved:
                self.ledger.reserved[name] = max(self.ledger.reserved[name], estimate())

    def release(self, name: str) -> None:
        self.ledger.reserved.pop(name, None)
        self._estimates.pop(name, None)
        self.changed.notify()

    async def enforce_budget(self, exclude: Collection[str] = ()) -> None:
        """After a load: start evicting idle LRU models until the loaded ones fit the budget.

        Loads still in flight do not count: each evicts for itself once done, so victims are
        chosen as late as possible and the requests served meanwhile count. Busy models are
        not picked; the watcher's `settle` evicts once they drain.
        """
        async with self.cache.changing():
            excess = self.loaded_bytes() - self.ledger.budget_bytes
            while excess > 0:
                victim = self.cache.least_recently_used_idle(exclude={*exclude, *self.protected()})
                if victim is None:
                    return
                self._start_eviction(victim)
                excess -= victim.memory_bytes

    def loaded_bytes(self) -> int:
        """What loaded models hold: neither loads in flight nor models being unloaded."""
        ledger = self.ledger
        loading = sum(ledger.reading.by_model.get(name, 0) for name in ledger.reserved)
        return ledger.reading.pss_bytes - loading - ledger.freeing_bytes()

    async def settle(self) -> None:
        """The watcher's check: models that were busy when memory went over budget go once
        idle."""
        if self.loaded_bytes() > self.ledger.budget_bytes:
            await self.enforce_budget()

    async def evict_one(self, exclude: str) -> bool:
        """Evict the idle LRU model (SageMaker's answer to a 507) and wait for its unload."""
        async with self.cache.changing():
            victim = self.cache.least_recently_used_idle(exclude={exclude, *self.protected()})
            if victim is None:
                return False
            unload = self._start_eviction(victim)
        await asyncio.shield(unload)
        return True

    async def evict_prefix(self, prefix: str) -> list[str]:
        """Unload every loaded TargetModel whose key starts with `prefix`; their keys, sorted.

        The models leave the cache inside its change lock, so no caller is handed one afterwards;
        Triton finishes requests already running on a model before it unloads it. Evictions
        already in progress, which may be of models under `prefix`, are waited for too.
        """
        async with self.cache.changing():
            victims = [
                entry for entry in self.cache.models() if entry.target.key.startswith(prefix)
            ]
            for victim in victims:
                self._start_eviction(victim)
            unloads = list(self._unloads.values())
        for unload in unloads:
            await asyncio.shield(unload)
        return sorted(victim.target.key for victim in victims)

    async def unloaded(self, name: str) -> None:
        """Wait until an unload of `name` in progress has finished (and deleted its files)."""
        unload = self._unloads.get(name)
        if unload is not None:
            await asyncio.shield(unload)

    def forget(self, dropped: Collection[str]) -> None:
        """The server restarted: what it had loaded, and its memory, are gone; the unpacked
        files of `dropped` (models it had loaded) are deleted, and a load of one waits for that.
        """
        self.ledger.unloading.clear()
        self.ledger.reading = ServerMemory(time.monotonic(), 0, 0)
        for name in dropped:
            if name not in self._unloads:
                self._unloads[name] = asyncio.create_task(self._delete_files(name))
        self.changed.notify()

    def cancel(self) -> None:
        """The endpoint closes: stop its unloads and readings."""
        for task in (*self._unloads.values(), self._reading, self._next_reading):
            if task is not None:
                task.cancel()

    def _start_eviction(self, victim: LoadedModel) -> asyncio.Task[None]:
        self.cache.remove(victim.name)
        self.ledger.unloading[victim.name] = victim.memory_bytes
        unload = asyncio.create_task(self._unload(victim))
        self._unloads[victim.name] = unload
        return unload

    async def _unload(self, victim: LoadedModel) -> None:
        labels = {"endpoint": self.endpoint, "target_model": victim.target.key}
        try:
            started = time.monotonic()
            unload = asyncio.create_task(self.server.unload(victim.name))
            # Triton answers an unload a while after the model's stub has exited (1.2 s and 2 s
            # here): readings meanwhile let waiting loads use the memory as soon as it is free.
            while not unload.done():
                await asyncio.wait([unload], timeout=UNLOAD_READING_S)
                with contextlib.suppress(Exception):
                    await self.refresh()
            with contextlib.suppress(TritonError):
                await unload
            self.metrics.observe_seconds("ModelUnloadingTime", time.monotonic() - started, **labels)
            self.metrics.add("ModelEvictions", endpoint=self.endpoint)
            self.evictions.add()
            path = self.models_dir / victim.name
            await asyncio.to_thread(shutil.rmtree, path, ignore_errors=True)
            with contextlib.suppress(Exception):
                await self.refresh()
        finally:
            self.ledger.unloading.pop(victim.name, None)
            self._unload_done(victim.name)

    async def _delete_files(self, name: str) -> None:
        try:
            await asyncio.to_thread(shutil.rmtree, self.models_dir / name, ignore_errors=True)
        finally:
            self._unload_done(name)

    def _unload_done(self, name: str) -> None:
        if self._unloads.get(name) is asyncio.current_task():
            del self._unloads[name]
        self.changed.notify()


def _retrieve_exception(task: asyncio.Task[ServerMemory]) -> None:
    """Callers that were cancelled never read a failed reading's error; read it here."""
    if not task.cancelled():
        task.exception()
