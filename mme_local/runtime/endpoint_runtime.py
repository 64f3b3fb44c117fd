"""One endpoint's model cache in front of its own Triton process.

A cold TargetModel is downloaded from the endpoint's model-data prefix, verified, unpacked into
`<models dir>/<hash>/model/` and loaded under its hash; concurrent first calls share that one
load (single-flight), and calls to warm models never wait for it. Loads of different models run
at once, up to `load_concurrency` (the rest wait for a slot), each reserving its expected memory
before Triton loads it (`endpoint_memory.py`), so memory stays under the budget; what each load
cost is measured and kept for the next (`model_usage.py`). Every change to the bookkeeping goes
through the cache's short critical section; no lock is held while a model downloads, loads or
unloads. A model with requests in flight is never evicted. If Triton dies it is restarted and
callers get a retryable 503 meanwhile; a load that outlived the server it started on is not
kept. Once the endpoint is stopped (deleted), its callers, including those waiting on a load,
get the AWS error for an endpoint that does not exist. A model's unpacked folder lives as long
as the model is loaded or loading: an eviction, an unload, a load not kept, a restart of the
server and a stop of the endpoint each delete the folders of the models they drop.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import time
from collections import Counter
from pathlib import Path

from mme_factory.errors import StoreError
from mme_factory.protocol import OUT_OF_MEMORY
from mme_factory.store import ArtifactStore, KeyMissing
from mme_factory.triton import TritonError
from mme_local.aws_errors import (
    AwsError,
    endpoint_not_found,
    model_error,
    model_not_ready,
    service_unavailable,
)
from mme_local.runtime.cache_policy import CachePolicy
from mme_local.runtime.cold_load import ColdLoad
from mme_local.runtime.endpoint_memory import EndpointMemory
from mme_local.runtime.endpoint_status import describe_endpoint, endpoint_gauges
from mme_local.runtime.metrics import Metrics
from mme_local.runtime.model_cache import LoadedModel, ModelCache
from mme_local.runtime.model_server import ModelServer
from mme_local.runtime.model_source import ModelSource
from mme_local.runtime.model_usage import ModelUsage
from mme_local.runtime.prefix_unload import PrefixUnloads
from mme_local.runtime.target_model import TargetModel

WATCH_INTERVAL_S = 0.5


class EndpointRuntime:
    def __init__(
        self,
        name: str,
        store: ArtifactStore,
        server: ModelServer,
        models_dir: Path,
        policy: CachePolicy,
        metrics: Metrics,
    ) -> None:
        self.name, self.server = name, server
        self.models_dir, self.policy, self.metrics = models_dir, policy, metrics
        self.source = ModelSource(store, policy.limits.max_extracted_bytes)
        self.cache = ModelCache()
        self.usage = ModelUsage()
        self._loads: dict[TargetModel, asyncio.Task[LoadedModel]] = {}
        self.prefix_unloads = PrefixUnloads()
        # Callers waiting for a model's load: once it is done, it is theirs before any eviction.
        self._waiting: Counter[str] = Counter()
        self.memory = EndpointMemory(
            name,
            server,
            self.cache,
            models_dir,
            policy.budget_bytes,
            self._protected,
            self.usage.largest_footprint,
            metrics,
        )
        self.cold = ColdLoad(
            self,
            server,
            self.source,
            self.cache,
            self.memory,
            self.usage,
            metrics,
            models_dir,
            policy,
        )
        self.generation = 0  # one more at each restart of the model server
        self._stopped = False
        self._ready = asyncio.Event()
        self._watcher: asyncio.Task[None] | None = None
        self._restart: asyncio.Task[None] | None = None
        metrics.watch(name, self.gauges)

    @property
    def ready(self) -> bool:
        return self._ready.is_set() and self.server.alive

    @property
    def stopped(self) -> bool:
        return self._stopped

    @property
    def peak_memory_bytes(self) -> int:
        return self.memory.peak_pss_bytes

    def loading(self, name: str) -> bool:
        """Whether a load of the Triton model `name` is in flight."""
        return any(target.triton_name == name for target in self._loads)

    def withdrawn(self, key: str) -> bool:
        """Whether a load of `key` must not be kept: an unload of its prefix is in progress."""
        return self.prefix_unloads.withdrawn(key)

    async def start(self) -> None:
        """Start Triton; the endpoint is InService once this returns."""
        await self.server.start()
        if self._stopped:
            return  # closed while starting: stop() takes the server down
        with contextlib.suppress(Exception):
            await self.memory.refresh()
        self._ready.set()
        if self._watcher is None:
            self._watcher = asyncio.create_task(self._watch())

    def close(self) -> None:
        """Refuse callers from now on and cancel loads; `stop()` then takes the server down."""
        self._stopped = True
        self._ready.clear()
        for task in (self._watcher, self._restart, *self._loads.values()):
            if task is not None:
                task.cancel()
        self.memory.cancel()
        self._watcher = self._restart = None

    async def stop(self) -> None:
        """Take the server down and delete every model unpacked for it."""
        self.close()
        async with self.cache.changing():
            self.cache.clear()
        await self.server.stop()
        await asyncio.to_thread(shutil.rmtree, self.models_dir, ignore_errors=True)

    async def unload_prefix(self, prefix: str) -> list[str]:
        """Unload the TargetModels whose keys start with `prefix` (an offboarded customer's),
        loads in flight included (`prefix_unload.py`); their keys."""
        return await self.prefix_unloads.unload(prefix, self.memory.evict_prefix, self._loads)

    async def invoke(
        self, target: TargetModel, body: bytes, content_type: str, customer_traffic: bool = True
    ) -> tuple[int, dict[str, str], bytes]:
        """Triton's answer for `target`; AwsError for anything the client must see as an error.

        `customer_traffic` is False for warm-up calls: they count as use for LRU eviction, not
        in the TargetModel's traffic figures.
        """
        if self._stopped:
            raise endpoint_not_found(self.name)
        if not self.ready:
            if self._ready.is_set():
                self._schedule_restart()
            raise service_unavailable(f"endpoint {self.name} is starting its model server; retry")
        entry = await self._loaded(target)
        entry.in_flight += 1
        if customer_traffic:
            self.usage.invoked(target.key)
        try:
            return await self._invoke_loaded(entry, body, content_type)
        finally:
            entry.in_flight -= 1
            entry.last_used = time.monotonic()
            if entry.in_flight == 0:
                self.memory.changed.notify()  # a load may be waiting for this model to drain

    async def _loaded(self, target: TargetModel) -> LoadedModel:
        """The loaded model, loading it once for all concurrent callers (single-flight)."""
        name, labels = target.triton_name, {"endpoint": self.name}
        entry = self.cache.get(name)
        if entry is not None and not await self._holds_current_bytes(entry):
            entry = None  # the key holds other bytes now: load those, never serve the old ones
        elif entry is not None:
            entry = self.cache.get(name)  # it may have been evicted while the store answered
        self.metrics.observe("ModelCacheHit", 1.0 if entry else 0.0, **labels)
        started = time.monotonic()
        # A model can be evicted between its load finishing and this caller resuming: reload.
        for _ in range(3):
            if entry is not None:
                return entry
            task = self._loads.get(target)
            if task is None:
                if self.withdrawn(target.key):
                    raise service_unavailable(
                        f"TargetModel {target.key!r} is being unloaded; retry"
                    )
                task = asyncio.create_task(self.cold.load(target))
                self._loads[target] = task
                task.add_done_callback(lambda done, t=target: self._load_finished(t, done))
            remaining = self.policy.load_wait_s - (time.monotonic() - started)
            self._waiting[name] += 1
            try:
                await asyncio.wait_for(asyncio.shield(task), max(remaining, 0.0))
            except TimeoutError:
                raise model_not_ready(target.key, self.policy.load_wait_s) from None
            except asyncio.CancelledError:
                # The load was cancelled by stop(), not this caller: the endpoint is gone.
                if self._stopped and not _cancelling():
                    raise endpoint_not_found(self.name) from None
                raise
            finally:
                self._waiting[name] -= 1
                if self._waiting[name] <= 0:
                    del self._waiting[name]
                waited = time.monotonic() - started
                self.metrics.observe_seconds("ModelLoadingWaitTime", waited, **labels)
            entry = self.cache.get(name)
        raise service_unavailable(f"TargetModel {target.key!r} was evicted while loading; retry")

    async def _holds_current_bytes(self, entry: LoadedModel) -> bool:
        """Whether the key still holds the bytes `entry` was loaded from."""
        key = entry.target.key
        try:
            # A warm local key is answered by one stat, on the loop: a thread costs more.
            current = self.source.known_sha256(key) or await asyncio.to_thread(
                self.source.current_sha256, key
            )
        except KeyMissing as error:
            raise model_error(404, f"cannot download model data: {error}", key) from None
        except StoreError as error:
            # Not knowing what the key holds is no licence to serve what it held: retry.
            raise service_unavailable(f"cannot check TargetModel {key!r}: {error}; retry") from None
        return current == entry.sha256

    def _protected(self) -> set[str]:
        return {*(target.triton_name for target in self._loads), *self._waiting}

    def _load_finished(self, target: TargetModel, task: asyncio.Task[LoadedModel]) -> None:
        if self._loads.get(target) is task:
            del self._loads[target]
        # Callers that gave up (429) never read a failed load's error; read it here.
        if not task.cancelled():
            task.exception()

    async def _invoke_loaded(
        self, entry: LoadedModel, body: bytes, content_type: str
    ) -> tuple[int, dict[str, str], bytes]:
        labels = {"endpoint": self.name, "target_model": entry.target.key}
        while True:
            started = time.perf_counter()
            try:
                status, headers, answer = await self.server.invoke(entry.name, body, content_type)
            except TritonError as error:
                raise self.server_failure(error) from None
            self.metrics.observe_seconds("ModelLatency", time.perf_counter() - started, **labels)
            if status == OUT_OF_MEMORY and await self.memory.evict_one(exclude=entry.name):
                continue
            if status == 200:
                return status, headers, answer
            text = answer.decode("utf-8", errors="replace").strip() or f"HTTP {status}"
            raise model_error(status, text, entry.target.key)

    def server_failure(self, error: TritonError) -> AwsError:
        if self._stopped:
            return endpoint_not_found(self.name)
        if not self.server.alive:
            self._schedule_restart()
            return service_unavailable(f"endpoint {self.name}: model server restarting; retry")
        return service_unavailable(f"endpoint {self.name}: {error.message}")

    def _schedule_restart(self) -> None:
        if self._stopped:
            return
        if self._restart is None or self._restart.done():
            self._ready.clear()
            self._restart = asyncio.create_task(self._restart_server())

    async def _restart_server(self) -> None:
        """Triton died: forget what it had loaded, and delete its files, and start a fresh one;
        loads come on demand."""
        self.metrics.add("TritonRestarts", endpoint=self.name)
        while True:
            self.generation += 1  # loads in flight on the dead server are not kept
            async with self.cache.changing():
                # A model being reloaded (its key holds new bytes) is the load's to clean up.
                dropped = [
                    entry.name for entry in self.cache.models() if entry.target not in self._loads
                ]
                self.cache.clear()
                self.memory.forget(dropped)
            with contextlib.suppress(Exception):
                await self.server.stop()
                await self.server.start()
                await self.memory.refresh()
                self._ready.set()
                return
            await asyncio.sleep(1.0)

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(WATCH_INTERVAL_S)
            if self._ready.is_set() and not self.server.alive:
                self._schedule_restart()
            elif self._ready.is_set():
                with contextlib.suppress(Exception):
                    await self.memory.refresh()
                # Models that were busy when memory went over budget go once idle.
                await self.memory.settle()

    def gauges(self) -> dict[str, float]:
        """The endpoint's gauges as of now, read when `/metrics` is scraped."""
        return endpoint_gauges(self.memory, self.cache, self.cold)

    def describe(self) -> dict[str, object]:
        return describe_endpoint(
            self.name,
            self.ready,
            self.server,
            self.policy,
            self.memory,
            self.cache,
            self.cold,
            self.usage,
        )


def _cancelling() -> bool:
    """Whether the running task itself is being cancelled (not only something it awaits)."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0
