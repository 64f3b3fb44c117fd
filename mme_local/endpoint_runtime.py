"""One endpoint's model cache in front of its own Triton process.

A cold TargetModel is downloaded from the endpoint's model-data prefix, verified, unpacked into
`<models dir>/<hash>/model/` and loaded under its hash; concurrent first calls share that one
load, and calls to warm models never wait for it. Every change to what is loaded (load,
eviction, the unload-and-retry after a 507, restarting the server) goes through the cache's one
serialisation point, one at a time, and a load starts only once memory is under the budget, so
memory stays under the budget plus at most the model being loaded. The least-recently-used
models are chosen after the load, not before: requests served while it loaded count, and warm
models keep serving during it (the load benchmark's p50 fell from 1.5 s to 34 ms with this
order). A model with requests in flight is never evicted. If Triton dies it is restarted and
callers get a retryable 503 meanwhile. Once the endpoint is stopped (deleted), its callers,
including those waiting on a load, get the AWS error for an endpoint that does not exist.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from mme_factory.errors import StoreError
from mme_factory.model_archive import ArchiveLimits, ModelArchiveError, extract_model
from mme_factory.store import ArtifactStore, KeyMissing
from mme_factory.triton import TritonError
from mme_local.aws_errors import (
    AwsError,
    endpoint_not_found,
    model_error,
    model_not_ready,
    service_unavailable,
)
from mme_local.metrics import Metrics
from mme_local.model_cache import LoadedModel, ModelCache
from mme_local.model_server import ModelServer
from mme_local.model_source import ModelSource
from mme_local.target_model import TargetModel

OUT_OF_MEMORY = 507
WATCH_INTERVAL_S = 0.5
STAGE_METRICS = {
    "download": "ModelDownloadingTime",
    "extract": "ModelExtractingTime",
    "load": "ModelLoadingTime",
}


@dataclass(frozen=True)
class CachePolicy:
    budget_bytes: int
    load_wait_s: float
    limits: ArchiveLimits


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
        self._loads: dict[str, asyncio.Task[LoadedModel]] = {}
        self._stopped = False
        self._released = asyncio.Condition()
        self._ready = asyncio.Event()
        self._watcher: asyncio.Task[None] | None = None
        self._restart: asyncio.Task[None] | None = None
        self.peak_memory_bytes = 0
        metrics.set("MemoryBudgetBytes", policy.budget_bytes, endpoint=name)

    @property
    def ready(self) -> bool:
        return self._ready.is_set() and self.server.alive

    async def start(self) -> None:
        """Start Triton; the endpoint is InService once this returns."""
        await self.server.start()
        if self._stopped:
            return  # closed while starting: stop() takes the server down
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
        self._watcher = self._restart = None

    async def stop(self) -> None:
        self.close()
        async with self.cache.changing():
            await self.server.stop()
            self.cache.clear()

    async def invoke(
        self, target: TargetModel, body: bytes, content_type: str
    ) -> tuple[int, dict[str, str], bytes]:
        """Triton's answer for `target`; AwsError for anything the client must see as an error."""
        if self._stopped:
            raise endpoint_not_found(self.name)
        if not self.ready:
            if self._ready.is_set():
                self._schedule_restart()
            raise service_unavailable(f"endpoint {self.name} is starting its model server; retry")
        entry = await self._loaded(target)
        entry.in_flight += 1
        try:
            return await self._invoke_loaded(entry, body, content_type)
        finally:
            entry.in_flight -= 1
            entry.last_used = time.monotonic()
            async with self._released:
                self._released.notify_all()

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
            task = self._loads.get(name)
            if task is None:
                task = asyncio.create_task(self._load(target))
                self._loads[name] = task
                task.add_done_callback(lambda done, n=name: self._load_finished(n, done))
            remaining = self.policy.load_wait_s - (time.monotonic() - started)
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

    def _load_finished(self, name: str, task: asyncio.Task[LoadedModel]) -> None:
        self._loads.pop(name, None)
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
                raise self._server_failure(error) from None
            self.metrics.observe_seconds("ModelLatency", time.perf_counter() - started, **labels)
            if status == OUT_OF_MEMORY:
                async with self.cache.changing():
                    evicted = await self._evict_one(exclude=entry.name)
                if evicted:
                    continue
            if status == 200:
                return status, headers, answer
            text = answer.decode("utf-8", errors="replace").strip() or f"HTTP {status}"
            raise model_error(status, text, entry.target.key)

    async def _load(self, target: TargetModel) -> LoadedModel:
        name, labels = target.triton_name, {"endpoint": self.name, "target_model": target.key}
        entry = LoadedModel(target)
        async with self.cache.changing():
            model_root = self.models_dir / name
            try:
                archive = model_root / "model.tar.gz"
                started = time.monotonic()
                entry.sha256 = await asyncio.to_thread(self.source.download, target.key, archive)
                entry.timings_s["download"] = time.monotonic() - started
                started = time.monotonic()
                await asyncio.to_thread(
                    extract_model, archive, model_root / "model", self.policy.limits
                )
                entry.timings_s["extract"] = time.monotonic() - started
                archive.unlink(missing_ok=True)
                await self._wait_under_budget(exclude=name)
                before = await self.server.resident_memory_bytes()
                started = time.monotonic()
                await self._load_with_retry(name, model_root / "model")
                entry.timings_s["load"] = time.monotonic() - started
            except StoreError as error:
                shutil.rmtree(model_root, ignore_errors=True)
                raise model_error(404, f"cannot download model data: {error}", target.key) from None
            except ModelArchiveError as error:
                shutil.rmtree(model_root, ignore_errors=True)
                raise model_error(400, str(error), target.key) from None
            except OSError as error:
                shutil.rmtree(model_root, ignore_errors=True)
                raise model_error(500, f"cannot store model data: {error}", target.key) from None
            except TritonError as error:
                shutil.rmtree(model_root, ignore_errors=True)
                if error.status == 503 and not self.server.alive:
                    raise self._server_failure(error) from None
                raise model_error(error.status, error.message, target.key) from None
            for stage, metric in STAGE_METRICS.items():
                self.metrics.observe_seconds(metric, entry.timings_s[stage], **labels)
            used = await self._measure_memory()
            entry.memory_bytes = max(used - before, 0)
            self.cache.add(entry)
            self.metrics.set("LoadedModelCount", len(self.cache), endpoint=self.name)
            await self._enforce_budget(used, exclude=name)
        return entry

    async def _load_with_retry(self, name: str, model_dir: Path) -> None:
        while True:
            try:
                await self.server.load(name, model_dir)
                return
            except TritonError as error:
                # SageMaker's answer to Triton's 507: unload the LRU model and try again.
                if error.status != OUT_OF_MEMORY or not await self._evict_one(exclude=name):
                    raise

    async def _wait_under_budget(self, exclude: str) -> None:
        """Before a load: evict idle LRU models while over budget; wait for busy ones to drain.

        Never the one being loaded: a copy of it still cached (its key holds other bytes now)
        has its directory, which evicting it would delete, replaced by the new bytes.
        """
        deadline = time.monotonic() + self.policy.load_wait_s
        while len(self.cache) and time.monotonic() < deadline:
            used = await self._measure_memory()
            if used <= self.policy.budget_bytes:
                return
            if await self._evict_one(exclude=exclude):
                continue
            async with self._released:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._released.wait(), 0.5)

    async def _enforce_budget(self, used: int, exclude: str | None = None) -> None:
        while used > self.policy.budget_bytes and await self._evict_one(exclude=exclude):
            used = await self._measure_memory()

    async def _evict_one(self, exclude: str | None = None) -> bool:
        victim = self.cache.least_recently_used_idle(exclude=exclude)
        if victim is None:
            return False
        self.cache.remove(victim.name)
        started = time.monotonic()
        with contextlib.suppress(TritonError):
            await self.server.unload(victim.name)
        labels = {"endpoint": self.name, "target_model": victim.target.key}
        self.metrics.observe_seconds("ModelUnloadingTime", time.monotonic() - started, **labels)
        self.metrics.add("ModelEvictions", endpoint=self.name)
        self.metrics.set("LoadedModelCount", len(self.cache), endpoint=self.name)
        shutil.rmtree(self.models_dir / victim.name, ignore_errors=True)
        return True

    async def _measure_memory(self) -> int:
        used = await self.server.resident_memory_bytes()
        self.peak_memory_bytes = max(self.peak_memory_bytes, used)
        labels = {"endpoint": self.name}
        self.metrics.set("MemoryUsedBytes", used, **labels)
        self.metrics.set("MemoryUtilization", 100.0 * used / self.policy.budget_bytes, **labels)
        self.metrics.set("LoadedModelCount", len(self.cache), **labels)
        return used

    def _server_failure(self, error: TritonError) -> AwsError:
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
        """Triton died: forget what it had loaded and start a fresh one; loads come on demand."""
        self.metrics.add("TritonRestarts", endpoint=self.name)
        while True:
            async with self.cache.changing():
                self.cache.clear()
                with contextlib.suppress(Exception):
                    await self.server.stop()
                    await self.server.start()
                    self._ready.set()
                    return
            await asyncio.sleep(1.0)

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(WATCH_INTERVAL_S)
            if self._ready.is_set() and not self.server.alive:
                self._schedule_restart()
            elif self._ready.is_set() and not self.cache.changes_in_progress:
                # Models that were busy when a load pushed memory over budget go once idle.
                async with self.cache.changing():
                    await self._enforce_budget(await self._measure_memory())

    def describe(self) -> dict[str, object]:
        return {
            "endpoint": self.name,
            "ready": self.ready,
            "triton_pid": self.server.pid,
            "triton_url": self.server.url,
            "budget_bytes": self.policy.budget_bytes,
            "peak_memory_bytes": self.peak_memory_bytes,
            "models": [entry.to_dict() for entry in self.cache.models()],
        }


def _cancelling() -> bool:
    """Whether the running task itself is being cancelled (not only something it awaits)."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0
