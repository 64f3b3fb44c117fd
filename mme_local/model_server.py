"""The async face of one endpoint's Triton process, as the endpoint runtime uses it.

Lifecycle, loads and unloads go through `TritonServer` in a worker thread; invocations, the hot
path, go over pooled keep-alive connections (`TritonHttpClient`) to the same SageMaker routes,
which keeps the service's overhead per request near half a millisecond.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Protocol

from mme_factory.triton import TritonRuntime, TritonServer
from mme_local.triton_http import TritonHttpClient


class ModelServer(Protocol):
    """What an endpoint needs from its model server (a real Triton, or a fake in unit tests)."""

    @property
    def alive(self) -> bool: ...
    @property
    def pid(self) -> int | None: ...
    @property
    def url(self) -> str: ...
    async def start(self) -> None: ...
    async def stop(self) -> None: ...
    async def load(self, name: str, model_dir: Path) -> None: ...
    async def unload(self, name: str) -> None: ...
    async def invoke(
        self, name: str, body: bytes, content_type: str
    ) -> tuple[int, dict[str, str], bytes]: ...
    async def resident_memory_bytes(self) -> int: ...


class TritonModelServer:
    def __init__(
        self,
        runtime: TritonRuntime,
        workdir: Path,
        start_timeout_s: float,
        load_timeout_s: float,
        invoke_timeout_s: float,
    ) -> None:
        self.server = TritonServer(runtime, workdir, workdir / "triton.log")
        self.start_timeout_s, self.load_timeout_s = start_timeout_s, load_timeout_s
        self._client = TritonHttpClient("127.0.0.1", self.server.http_port, invoke_timeout_s)

    @property
    def alive(self) -> bool:
        return self.server.alive

    @property
    def pid(self) -> int | None:
        return self.server.pid

    @property
    def url(self) -> str:
        return self.server.sagemaker_url

    async def start(self) -> None:
        await asyncio.to_thread(self.server.stop_leftovers)
        await asyncio.to_thread(self.server.start, self.start_timeout_s)

    async def stop(self) -> None:
        self._client.close()
        await asyncio.to_thread(self.server.stop)

    async def load(self, name: str, model_dir: Path) -> None:
        await asyncio.to_thread(self.server.load, name, model_dir, self.load_timeout_s)

    async def unload(self, name: str) -> None:
        await asyncio.to_thread(self.server.unload, name)

    async def invoke(
        self, name: str, body: bytes, content_type: str
    ) -> tuple[int, dict[str, str], bytes]:
        return await self._client.post(f"/models/{name}/invoke", body, content_type)

    async def resident_memory_bytes(self) -> int:
        return await asyncio.to_thread(self.server.resident_memory_bytes)
