"""An in-process stand-in for Triton, so cache and API logic test in milliseconds."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from mme_factory.triton import TritonError

MIB = 1024 * 1024


class FakeModelServer:
    """Loads cost `model_bytes` each on top of `base_bytes`; faults are switched on by tests."""

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
        await asyncio.sleep(self.load_s)
        if not self.running:
            raise TritonError(503, "connection refused")
        if self.out_of_memory_loads:
            self.out_of_memory_loads -= 1
            raise TritonError(507, "failed to allocate memory")
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
            return 507, {}, b'{"error": "out of memory"}'
        answer = json.dumps({"model_name": name, "echo": body.decode()}).encode()
        return 200, {"content-type": content_type}, answer

    def _resident(self) -> int:
        return self.base_bytes + self.model_bytes * len(self.loaded) if self.running else 0

    async def resident_memory_bytes(self) -> int:
        return self._resident()
