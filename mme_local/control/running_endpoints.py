"""The endpoints that run now: one runtime (a model cache before its own Triton) each.

CreateEndpoint starts one in the background (the endpoint is Creating until its Triton answers);
DeleteEndpoint forgets it at once and stops its Triton once a start in progress has finished.
Starts and stops of one endpoint run in the order they were asked for, one at a time, so a stop
always finds what the start before it left, and a start never races one.

An endpoint's models are unpacked under `endpoints/<name>/models/`; a stop deletes them, and
the service sweeps at start-up what a crash (or a stop cut short) left of endpoints not running.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from mme_factory.model_archive import ArchiveLimits
from mme_factory.settings import Settings
from mme_factory.triton import TritonRuntime
from mme_local.control.records import EndpointSpec, EndpointStatus
from mme_local.runtime import (
    CachePolicy,
    EndpointRuntime,
    Metrics,
    ModelServer,
    TritonModelServer,
    model_data_store,
)

ServerFactory = Callable[[str], ModelServer]
StatusReport = Callable[[str, EndpointStatus, str | None], None]
logger = logging.getLogger("mme_local")


class RunningEndpoints:
    def __init__(
        self,
        settings: Settings,
        root: Path,
        metrics: Metrics,
        server_factory: ServerFactory | None = None,
    ) -> None:
        """`root`: the service's state directory; `server_factory(name)` gives an endpoint its
        model server (by default a Triton process of its own)."""
        self.settings, self.root, self.metrics = settings, root, metrics
        self.server_factory = server_factory or self._triton_server
        self.runtimes: dict[str, EndpointRuntime] = {}
        self.variants: dict[str, str] = {}
        self._lifecycle_locks: dict[str, asyncio.Lock] = {}
        self._lifecycle_tasks: set[asyncio.Task[None]] = set()

    def _triton_server(self, name: str) -> ModelServer:
        triton = self.settings.triton
        return TritonModelServer(
            TritonRuntime.from_settings(self.settings),
            (self.root / "endpoints" / name / "triton").resolve(),
            triton.server_start_timeout_s,
            triton.load_timeout_s,
            self.settings.mme_local.invoke_timeout_s,
            self.settings.mme_local.load_concurrency,
        )

    async def start_endpoint(self, name: str, spec: EndpointSpec, report: StatusReport) -> None:
        """Create the endpoint's runtime and start its Triton in the background (Creating);
        `report` is told when it is InService or Failed."""
        local = self.settings.mme_local
        policy = CachePolicy(
            budget_bytes=self.settings.memory.budget_bytes,
            load_wait_s=local.model_load_wait_s,
            limits=ArchiveLimits.from_settings(local),
            load_concurrency=local.load_concurrency,
        )
        self.metrics.add_endpoint(name)
        runtime = EndpointRuntime(
            name,
            model_data_store(spec.model_data_url, self.settings),
            self.server_factory(name),
            (self.root / "endpoints" / name / "models").resolve(),
            policy,
            self.metrics,
        )
        self.runtimes[name], self.variants[name] = runtime, spec.variant
        self._in_order(name, self._bring_up(name, runtime, report))

    def _in_order(self, name: str, change: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        """Run `change` after every earlier start or stop of endpoint `name` has finished."""
        lock = self._lifecycle_locks.setdefault(name, asyncio.Lock())

        async def ordered() -> None:
            async with lock:
                await change

        task = asyncio.create_task(ordered())
        self._lifecycle_tasks.add(task)
        task.add_done_callback(self._lifecycle_tasks.discard)
        return task

    def _current(self, name: str, runtime: EndpointRuntime) -> bool:
        """Whether `runtime` is still the endpoint's (not one deleted, maybe re-created since)."""
        return self.runtimes.get(name) is runtime

    async def _bring_up(self, name: str, runtime: EndpointRuntime, report: StatusReport) -> None:
        if not self._current(name, runtime):
            return  # deleted before its turn
        try:
            await runtime.start()
        except Exception as error:
            if self._current(name, runtime):
                report(name, "Failed", f"model server did not start: {error}")
            return
        # Deleted while it was starting: the stop queued behind this start takes it down.
        if self._current(name, runtime):
            report(name, "InService", None)

    async def stop_endpoint(self, name: str) -> None:
        """Forget the endpoint now; its server stops once a start in progress has finished."""
        runtime = self.runtimes.pop(name, None)
        self.metrics.remove_endpoint(name)
        self.variants.pop(name, None)
        if runtime is None:
            return
        runtime.close()
        starting = self._lifecycle_locks.setdefault(name, asyncio.Lock()).locked()
        stopping = self._in_order(name, runtime.stop())
        if not starting:
            await asyncio.shield(stopping)

    def sweep_unpacked_models(self) -> list[Path]:
        """Delete the unpacked models of every endpoint not running now; the folders deleted."""
        swept = []
        for models_dir in sorted((self.root / "endpoints").glob("*/models")):
            if models_dir.parent.name not in self.runtimes:
                shutil.rmtree(models_dir, ignore_errors=True)
                swept.append(models_dir)
        if swept:
            logger.info("deleted unpacked models no running endpoint owns: %s", swept)
        return swept

    async def shutdown(self) -> None:
        for name in list(self.runtimes):
            await self.stop_endpoint(name)
        # Bounded: a start gives up after the server start timeout, and each stop follows it.
        while self._lifecycle_tasks:
            await asyncio.gather(*self._lifecycle_tasks, return_exceptions=True)
