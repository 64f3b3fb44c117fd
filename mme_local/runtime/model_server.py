"""The async face of one endpoint's Triton process, as the endpoint runtime uses it.

Lifecycle, loads and unloads go through `TritonServer`'s SageMaker routes in a worker thread;
invocations, the hot path, go over pooled keep-alive connections (`TritonHttpClient`) to
Triton's KServe port, which keeps the service's overhead per request near half a millisecond.
Triton's SageMaker port holds every invoke while any model loads or unloads; under churn that
is most of the time, so invokes take the port that does not.

Memory is read as the proportional share (PSS) of Triton and its stubs, and attributed to a
loaded model through its stub processes: a Python model's stub names the model's directory, a
Python-based backend's stub (the emulated `pytorch`) names its instance, `<model>_<group>_<n>`,
of the model or one of its ensemble members. That share stays right while several models load
at once, where a before-and-after difference of the total would count every overlapping load.
"""

from __future__ import annotations

import asyncio
import re
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from mme_factory.protocol import (
    INFERENCE_HEADER_CONTENT_LENGTH,
    OCTET_STREAM,
    OUT_OF_MEMORY,
    binary_content_type,
    binary_header_length,
)
from mme_factory.triton import TritonRuntime, TritonServer
from mme_factory.triton.process_memory import process_tree
from mme_local.runtime.triton_http import TritonHttpClient

_INSTANCE_NAME = re.compile(r"(.+)_\d+_\d+")
# What Triton's SageMaker route recognises as out of memory (and answers 507 for).
_OUT_OF_MEMORY_MESSAGES = (b"CUDA out of memory", b"MemoryError")


@dataclass(frozen=True)
class ServerMemory:
    """One reading of the model server's memory; `started` orders readings (monotonic s)."""

    started: float
    pss_bytes: int
    rss_bytes: int
    by_model: dict[str, int] = field(default_factory=dict)  # model name -> PSS of its stubs
    read_s: float = 0.0


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
    async def memory(self) -> ServerMemory: ...


class TritonModelServer:
    def __init__(
        self,
        runtime: TritonRuntime,
        workdir: Path,
        start_timeout_s: float,
        load_timeout_s: float,
        invoke_timeout_s: float,
        load_threads: int,
    ) -> None:
        self.server = TritonServer(
            runtime, workdir, workdir / "triton.log", load_threads=load_threads
        )
        self.start_timeout_s, self.load_timeout_s = start_timeout_s, load_timeout_s
        self._client = TritonHttpClient("127.0.0.1", self.server.inference_port, invoke_timeout_s)
        self._model_roots: dict[str, str] = {}  # model name -> `<models dir>/<hash>/`
        self._members: dict[str, str] = {}  # Triton model or ensemble member -> model name

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
        self._model_roots[name] = f"{model_dir.parent}/"
        self._members[name] = name
        for member in model_dir.iterdir():
            self._members[member.name] = name
        await asyncio.to_thread(self.server.load, name, model_dir, self.load_timeout_s)

    async def unload(self, name: str) -> None:
        await asyncio.to_thread(self.server.unload, name)

    async def invoke(
        self, name: str, body: bytes, content_type: str
    ) -> tuple[int, dict[str, str], bytes]:
        """Through Triton's KServe port, which answers while other models load or unload (its
        SageMaker port holds every invoke meanwhile), in the SageMaker route's terms: its
        binary content type, and 507 for an out-of-memory failure."""
        headers = {}
        header_length = _header_length(content_type)
        if header_length is not None:
            headers[INFERENCE_HEADER_CONTENT_LENGTH] = str(header_length)
            content_type = OCTET_STREAM
        path = f"/v2/models/{urllib.parse.quote(name, safe='')}/infer"
        status, answer_headers, answer = await self._client.post(path, body, content_type, headers)
        header_size = answer_headers.pop(INFERENCE_HEADER_CONTENT_LENGTH.lower(), None)
        if header_size is not None:
            answer_headers["content-type"] = binary_content_type(int(header_size))
        if status != 200 and any(text in answer for text in _OUT_OF_MEMORY_MESSAGES):
            status = OUT_OF_MEMORY
        return status, answer_headers, answer

    async def memory(self) -> ServerMemory:
        return await asyncio.to_thread(self._read_memory)

    def _read_memory(self) -> ServerMemory:
        started = time.monotonic()
        pid = self.server.pid
        tree = process_tree(pid) if pid is not None and self.server.alive else []
        by_model: dict[str, int] = {}
        for process in tree:
            name = self._model_of(process.arguments[1:])
            if name is not None:
                by_model[name] = by_model.get(name, 0) + process.pss_bytes
        return ServerMemory(
            started,
            sum(process.pss_bytes for process in tree),
            sum(process.rss_bytes for process in tree),
            by_model,
            time.monotonic() - started,
        )

    def _model_of(self, arguments: tuple[str, ...]) -> str | None:
        for name, root in list(self._model_roots.items()):
            if any(argument.startswith(root) for argument in arguments):
                return name
        for argument in arguments:
            instance = _INSTANCE_NAME.fullmatch(argument)
            if instance is not None and instance.group(1) in self._members:
                return self._members[instance.group(1)]
        return None


def _header_length(content_type: str) -> int | None:
    """The binary JSON header's length a request's content type carries; None when there is
    none, and the body goes to Triton as it came."""
    try:
        return binary_header_length(content_type)
    except ValueError:
        return None
