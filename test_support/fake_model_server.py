"""An in-process stand-in for Triton, so cache and API logic test in milliseconds."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

from mme_factory.protocol import OUT_OF_MEMORY
from mme_factory.triton import TritonError
from mme_local.runtime.model_server import ServerMemory

MIB = 1024 * 1024


class FakeModelServer:
    """Loads cost `model_bytes` each on top of `base_bytes`; faults are switched on by tests.

    A load holds half its memory while it runs and all of it once done, so readings taken
    during parallel loads see them grow. Each load's (name, start, end) is kept in
    `load_intervals` (monotonic s), to tell which loads overlapped.
    """

    def __init__(
        self, base_bytes: int = 30 * MIB, model_bytes: int = 40 * MIB, load_s: float = 0.05
    ) -> None:
        self.base_bytes, self.model_bytes, self.load_s = base_bytes, model_bytes, load_s
        self.invoke_s = 0.0
        self.running = False
        self.loaded: set[str] = set()
        self.load_calls: list[str] = []
        self.unload_calls: list[str] = []
        self.starts = 0
        self.out_of_memory_loads = 0
        self.out_of_memory_invokes = 0
        self.peak_bytes = 0
        self.loading: set[str] = set()
        self.load_intervals: list[tuple[str, float, float]] = []
        # Set `unload_gate` to hold unloads until the test sets it; `unloading` says one waits.
        self.unload_gate: asyncio.Event | None = None
        self.unloading = asyncio.Event()

    @property
    def alive(self) -> bool:
        return self.running

    @property
    def pid(self) -> int | None:
        return 4242 if self.running else None

    @property
    def url(self) -> str:
        return "http://fake"

    async def start(self) -> None:
        self.running, self.starts = True, self.starts + 1

    async def stop(self) -> None:
        self.running = False
        self.loaded.clear()

    def kill(self) -> None:
        self.running = False
        self.loaded.clear()

    async def load(self, name: str, model_dir: Path) -> None:
        self.load_calls.append(name)
        started = time.monotonic()
        self.loading.add(name)
        self.peak_bytes = max(self.peak_bytes, self._resident())
        try:
            await asyncio.sleep(self.load_s)
        finally:
            self.loading.discard(name)
            self.load_intervals.append((name, started, time.monotonic()))
        if not self.running:
            raise TritonError(503, "connection refused")
        if self.out_of_memory_loads:
            self.out_of_memory_loads -= 1
            raise TritonError(OUT_OF_MEMORY, "failed to allocate memory")
        assert (model_dir / "doubler" / "config.pbtxt").is_file()
        self.loaded.add(name)
        self.peak_bytes = max(self.peak_bytes, self._resident())

    async def unload(self, name: str) -> None:
        self.unload_calls.append(name)
        if self.unload_gate is not None:
            self.unloading.set()
            await self.unload_gate.wait()
        self.loaded.discard(name)

    async def invoke(
        self, name: str, body: bytes, content_type: str
    ) -> tuple[int, dict[str, str], bytes]:
        await asyncio.sleep(self.invoke_s)
        if not self.running:
            raise TritonError(503, "connection refused")
        if name not in self.loaded:
            return 404, {}, b""
        if self.out_of_memory_invokes:
            self.out_of_memory_invokes -= 1
            return OUT_OF_MEMORY, {}, b'{"error": "out of memory"}'
        answer = json.dumps({"model_name": name, "echo": body.decode()}).encode()
        return 200, {"content-type": content_type}, answer

    def _resident(self) -> int:
        if not self.running:
            return 0
        return self.base_bytes + self.model_bytes * len(self.loaded) + self._loading_bytes()

    def _loading_bytes(self) -> int:
        return self.model_bytes // 2 * len(self.loading - self.loaded)

    async def resident_memory_bytes(self) -> int:
        return self._resident()

    async def memory(self) -> ServerMemory:
        started = time.monotonic()
        by_model = {name: self.model_bytes for name in self.loaded} if self.running else {}
        for name in self.loading - self.loaded if self.running else set():
            by_model[name] = self.model_bytes // 2
        resident = self._resident()
        return ServerMemory(started, resident, resident, by_model)
