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
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import time
from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING

from mme_factory.errors import StoreError
from mme_factory.model_archive import ModelArchiveError, extract_model
from mme_factory.triton import TritonError
from mme_local.aws_errors import model_error, service_unavailable
from mme_local.model_cache import LoadedModel
from mme_local.target_model import TargetModel

if TYPE_CHECKING:
    from mme_local.endpoint_runtime import EndpointRuntime

OUT_OF_MEMORY = 507
STAGE_METRICS = {
    "download": "ModelDownloadingTime",
    "extract": "ModelExtractingTime",
    "load": "ModelLoadingTime",
}
RECENT_LOADS = 200


class ColdLoad:
    def __init__(self, runtime: EndpointRuntime, slots: asyncio.Semaphore) -> None:
        self.runtime, self.slots = runtime, slots
        self.in_flight = self.peak_in_flight = 0
        self.recent: deque[dict[str, object]] = deque(maxlen=RECENT_LOADS)

    async def load(self, target: TargetModel) -> LoadedModel:
        timeline: dict[str, object] = {"target_model": target.key, "asked": time.monotonic()}
        self.recent.append(timeline)
        try:
            async with self.slots:
                timeline["slot"] = time.monotonic()
                self.in_flight += 1
                self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
                try:
                    return await self._load(target, timeline)
                finally:
                    self.in_flight -= 1
        except BaseException as error:
            timeline["error"] = type(error).__name__
            raise
        finally:
            timeline["done"] = time.monotonic()

    async def _load(self, target: TargetModel, timeline: dict[str, object]) -> LoadedModel:
        runtime, memory = self.runtime, self.runtime.memory
        name, generation = target.triton_name, runtime.generation
        entry = LoadedModel(target)
        # An eviction of this very name still deleting its files finishes first.
        await memory.unloaded(name)
        timeline["unload_waited"] = time.monotonic()
        model_root = runtime.models_dir / name
        try:
            tarball_bytes = await self._fetch(entry, model_root)
            timeline["fetched"] = time.monotonic()

            def estimate() -> int:
                expected = runtime.usage.expected_footprint(target.key, tarball_bytes)
                return min(expected, runtime.policy.budget_bytes)

            await memory.admit(name, estimate, runtime.policy.load_wait_s)
            timeline["admitted"] = time.monotonic()
            timeline["reserved_bytes"] = memory.ledger.reserved.get(name, 0)
            try:
                before = memory.ledger.reading
                started = time.monotonic()
                await self._load_with_retry(name, model_root / "model")
                entry.timings_s["load"] = time.monotonic() - started
                timeline["loaded"] = time.monotonic()
                after = await memory.refresh()
                entry.memory_bytes = after.by_model.get(name) or max(
                    after.pss_bytes - before.pss_bytes, 0
                )
                async with runtime.cache.changing():
                    current = not runtime.stopped and runtime.generation == generation
                    if current:
                        runtime.cache.add(entry)
                        runtime.usage.loaded(target.key, entry.memory_bytes, tarball_bytes)
                        memory.revise_reservations()
                if not current:
                    # Loaded on a server started after this load began: not in the cache, so
                    # nothing could ever evict it; unload it.
                    with contextlib.suppress(TritonError):
                        await runtime.server.unload(name)
                    raise service_unavailable(
                        f"endpoint {runtime.name}: model server restarted while "
                        f"TargetModel {target.key!r} loaded; retry"
                    )
            finally:
                memory.release(name)
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
            if error.status == 503 and not runtime.server.alive:
                raise runtime.server_failure(error) from None
            raise model_error(error.status, error.message, target.key) from None
        labels = {"endpoint": runtime.name, "target_model": target.key}
        for stage, metric in STAGE_METRICS.items():
            runtime.metrics.observe_seconds(metric, entry.timings_s[stage], **labels)
        timeline["footprint_bytes"] = entry.memory_bytes
        await memory.enforce_budget(exclude={name})
        return entry

    async def _fetch(self, entry: LoadedModel, model_root: Path) -> int:
        """Download and unpack the TargetModel into `model_root/model`; the tarball's size."""
        runtime = self.runtime
        archive = model_root / "model.tar.gz"
        started = time.monotonic()
        entry.sha256 = await asyncio.to_thread(runtime.source.download, entry.target.key, archive)
        entry.timings_s["download"] = time.monotonic() - started
        tarball_bytes = archive.stat().st_size
        started = time.monotonic()
        await asyncio.to_thread(extract_model, archive, model_root / "model", runtime.policy.limits)
        entry.timings_s["extract"] = time.monotonic() - started
        archive.unlink(missing_ok=True)
        return tarball_bytes

    async def _load_with_retry(self, name: str, model_dir: Path) -> None:
        while True:
            try:
                await self.runtime.server.load(name, model_dir)
                return
            except TritonError as error:
                # SageMaker's answer to Triton's 507: unload the LRU model and try again.
                if error.status != OUT_OF_MEMORY or not await self.runtime.memory.evict_one(name):
                    raise
