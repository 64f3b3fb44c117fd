"""One cold load of a TargetModel: slot, download, unpack, memory reservation, Triton load.

At most `load_concurrency` loads hold a slot at once per endpoint; the slot covers the whole
load, so loads in flight never exceed it. Download and unpacking need no memory budget (the
tarball is on disk, not in Triton); the reservation is taken just before Triton loads the model
and released once a reading taken after the load shows what it holds. The footprint kept for
the model is the PSS of its own stub processes in that reading; a server that cannot attribute
memory to a model (no stubs: a backend inside tritonserver) gives the growth of the total.

Each load keeps a timeline in `recent` (monotonic s: asked, slot, unload_waited for an eviction
of the same model, fetched, admitted, loaded, done), so the wait of a cold request can be told
apart: a slot, an unload, memory, or Triton itself.

A load is given the parts of the endpoint it works with; of the endpoint itself it asks only
what `LoadOwner` names: whether the model server it loaded on is still the endpoint's, and
whether an unload of its prefix is in progress (then it stops at its next step, or unloads the
model from Triton once loaded). A load that is not kept, for any reason (an error, no memory
in time, an unload of its prefix, a restart), deletes its unpacked files.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import time
from collections import deque
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Protocol

from mme_factory.errors import StoreError
from mme_factory.model_archive import ModelArchiveError, extract_model
from mme_factory.protocol import OUT_OF_MEMORY
from mme_factory.triton import TritonError
from mme_local.aws_errors import AwsError, model_error, service_unavailable
from mme_local.runtime.cache_policy import CachePolicy
from mme_local.runtime.endpoint_memory import EndpointMemory
from mme_local.runtime.metrics import Metrics
from mme_local.runtime.model_cache import LoadedModel, ModelCache
from mme_local.runtime.model_server import ModelServer
from mme_local.runtime.model_source import ModelSource
from mme_local.runtime.model_usage import ModelUsage
from mme_local.runtime.target_model import TargetModel

STAGE_METRICS = {
    "download": "ModelDownloadingTime",
    "extract": "ModelExtractingTime",
    "load": "ModelLoadingTime",
}
RECENT_LOADS = 200


class LoadOwner(Protocol):
    """The endpoint a load is for, as far as the load needs to know it."""

    @property
    def name(self) -> str: ...
    @property
    def generation(self) -> int:
        """One more at each restart of the model server."""
        ...

    @property
    def stopped(self) -> bool: ...
    def withdrawn(self, key: str) -> bool:
        """Whether a load of `key` must not be kept: an unload of its prefix is in progress."""
        ...

    def server_failure(self, error: TritonError) -> AwsError:
        """What callers get when the model server failed them."""
        ...


@dataclass
class LoadTimeline:
    """When one load reached each step (monotonic s), and what it reserved and took."""

    target_model: str
    asked: float
    slot: float | None = None
    unload_waited: float | None = None
    fetched: float | None = None
    admitted: float | None = None
    reserved_bytes: int | None = None
    loaded: float | None = None
    footprint_bytes: int | None = None
    error: str | None = None
    done: float | None = None

    def to_dict(self) -> dict[str, object]:
        """The steps reached so far."""
        return {step: value for step, value in asdict(self).items() if value is not None}


class ColdLoad:
    def __init__(
        self,
        owner: LoadOwner,
        server: ModelServer,
        source: ModelSource,
        cache: ModelCache,
        memory: EndpointMemory,
        usage: ModelUsage,
        metrics: Metrics,
        models_dir: Path,
        policy: CachePolicy,
    ) -> None:
        self.owner, self.server, self.source = owner, server, source
        self.cache, self.memory, self.usage, self.metrics = cache, memory, usage, metrics
        self.models_dir, self.policy = models_dir, policy
        self.slots = asyncio.Semaphore(policy.load_concurrency)
        self.in_flight = self.peak_in_flight = 0
        self.recent: deque[LoadTimeline] = deque(maxlen=RECENT_LOADS)

    async def load(self, target: TargetModel) -> LoadedModel:
        timeline = LoadTimeline(target.key, asked=time.monotonic())
        self.recent.append(timeline)
        try:
            async with self.slots:
                timeline.slot = time.monotonic()
                self.in_flight += 1
                self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
                try:
                    return await self._load(target, timeline)
                finally:
                    self.in_flight -= 1
        except BaseException as error:
            timeline.error = type(error).__name__
            raise
        finally:
            timeline.done = time.monotonic()

    async def _load(self, target: TargetModel, timeline: LoadTimeline) -> LoadedModel:
        name, generation = target.triton_name, self.owner.generation
        # An eviction of this very name still deleting its files finishes first.
        await self.memory.unloaded(name)
        timeline.unload_waited = time.monotonic()
        model_root = self.models_dir / name
        try:
            entry = await self._load_into_server(target, generation, timeline, model_root)
        except BaseException:
            # A load that is not kept, for whatever reason, leaves no unpacked files behind.
            shutil.rmtree(model_root, ignore_errors=True)
            raise
        labels = {"endpoint": self.owner.name, "target_model": target.key}
        for stage, metric in STAGE_METRICS.items():
            self.metrics.observe_seconds(metric, entry.timings_s[stage], **labels)
        timeline.footprint_bytes = entry.memory_bytes
        await self.memory.enforce_budget(exclude={name})
        return entry

    async def _load_into_server(
        self, target: TargetModel, generation: int, timeline: LoadTimeline, model_root: Path
    ) -> LoadedModel:
        """Fetch, admit and load the model, and add it to the cache; AwsError when it is not."""
        memory, name = self.memory, target.triton_name
        entry = LoadedModel(target)
        try:
            self._refuse_if_unwanted(target, generation)
            tarball_bytes = await self._fetch(entry, model_root)
            timeline.fetched = time.monotonic()
            self._refuse_if_unwanted(target, generation)

            def estimate() -> int:
                expected = self.usage.expected_footprint(target.key, tarball_bytes)
                return min(expected, self.policy.budget_bytes)

            await memory.admit(name, estimate, self.policy.load_wait_s)
            timeline.admitted = time.monotonic()
            timeline.reserved_bytes = memory.reserved_for(name)
            try:
                self._refuse_if_unwanted(target, generation)
                before = memory.reading
                started = time.monotonic()
                await self._load_with_retry(name, model_root / "model")
                entry.timings_s["load"] = time.monotonic() - started
                timeline.loaded = time.monotonic()
                after = await memory.refresh()
                entry.memory_bytes = after.by_model.get(name) or max(
                    after.pss_bytes - before.pss_bytes, 0
                )
                async with self.cache.changing():
                    refusal = self._refusal(target, generation)
                    if refusal is None:
                        self.cache.add(entry)
                        self.usage.loaded(target.key, entry.memory_bytes, tarball_bytes)
                        memory.revise_reservations()
                if refusal is not None:
                    # Not in the cache, so nothing could ever evict it: unload it now.
                    with contextlib.suppress(TritonError):
                        await self.server.unload(name)
                    raise refusal
            finally:
                memory.release(name)
        except StoreError as error:
            raise model_error(404, f"cannot download model data: {error}", target.key) from None
        except ModelArchiveError as error:
            raise model_error(400, str(error), target.key) from None
        except OSError as error:
            raise model_error(500, f"cannot store model data: {error}", target.key) from None
        except TritonError as error:
            if error.status == 503 and not self.server.alive:
                raise self.owner.server_failure(error) from None
            raise model_error(error.status, error.message, target.key) from None
        return entry

    def _refusal(self, target: TargetModel, generation: int) -> AwsError | None:
        """Why the load must not be kept: an unload of its prefix is in progress, or the model
        server it began on has been restarted (or the endpoint stopped) since; None if kept."""
        if self.owner.withdrawn(target.key):
            return service_unavailable(
                f"TargetModel {target.key!r} was unloaded while it loaded; retry"
            )
        if self.owner.stopped or self.owner.generation != generation:
            return service_unavailable(
                f"endpoint {self.owner.name}: model server restarted while "
                f"TargetModel {target.key!r} loaded; retry"
            )
        return None

    def _refuse_if_unwanted(self, target: TargetModel, generation: int) -> None:
        refusal = self._refusal(target, generation)
        if refusal is not None:
            raise refusal

    async def _fetch(self, entry: LoadedModel, model_root: Path) -> int:
        """Download and unpack the TargetModel into `model_root/model`; the tarball's size."""
        archive = model_root / "model.tar.gz"
        started = time.monotonic()
        entry.sha256 = await asyncio.to_thread(self.source.download, entry.target.key, archive)
        entry.timings_s["download"] = time.monotonic() - started
        tarball_bytes = archive.stat().st_size
        started = time.monotonic()
        await asyncio.to_thread(extract_model, archive, model_root / "model", self.policy.limits)
        entry.timings_s["extract"] = time.monotonic() - started
        archive.unlink(missing_ok=True)
        return tarball_bytes

    async def _load_with_retry(self, name: str, model_dir: Path) -> None:
        while True:
            try:
                await self.server.load(name, model_dir)
                return
            except TritonError as error:
                # SageMaker's answer to Triton's 507: unload the LRU model and try again.
                if error.status != OUT_OF_MEMORY or not await self.memory.evict_one(name):
                    raise
