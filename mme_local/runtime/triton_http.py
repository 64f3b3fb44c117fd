"""A lean keep-alive HTTP/1.1 client for the invoke hot path to one Triton server.

A general-purpose async client costs about 0.7 ms per request here; this one writes the request
and reads a Content-Length (or chunked) answer on pooled connections, about 0.4 ms round trip
on loopback, so the service adds well under 2 ms.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping

from mme_factory.triton import TritonError

Connection = tuple[asyncio.StreamReader, asyncio.StreamWriter]
MAX_IDLE_CONNECTIONS = 32


class TritonHttpClient:
    def __init__(self, host: str, port: int, timeout_s: float) -> None:
        self.host, self.port, self.timeout_s = host, port, timeout_s
        self._idle: list[Connection] = []

    @property
    def idle_connections(self) -> int:
        """Connections kept open for the next requests."""
        return len(self._idle)

    async def post(
        self, path: str, body: bytes, content_type: str, headers: Mapping[str, str] | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        """Status, lower-cased headers and body; TritonError(503) when Triton cannot be reached."""
        extra = "".join(f"{name}: {value}\r\n" for name, value in (headers or {}).items())
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
            f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n{extra}\r\n"
        ).encode("latin-1")
        # A pooled connection may have died with a previous Triton process: retry once, fresh.
        for reused in (bool(self._idle), False):
            connection = self._idle.pop() if reused else None
            try:
                if connection is None:
                    connection = await asyncio.wait_for(
                        asyncio.open_connection(self.host, self.port), 5.0
                    )
                return await asyncio.wait_for(
                    self._exchange(connection, head + body), self.timeout_s
                )
            except TimeoutError:
                _close(connection)
                raise TritonError(
                    503, f"POST {path}: no answer in {self.timeout_s:.0f} s"
                ) from None
            except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as error:
                _close(connection)
                if not reused:
                    raise TritonError(503, f"POST {path} failed: {error!r}") from None
        raise AssertionError("unreachable")

    async def _exchange(
        self, connection: Connection, request: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        reader, writer = connection
        writer.write(request)
        await writer.drain()
        lines = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, separator, value = line.partition(":")
            if separator:
                headers[name.strip().lower()] = value.strip()
        if headers.get("transfer-encoding", "").lower() == "chunked":
            body = await _read_chunked(reader)
        else:
            body = await reader.readexactly(int(headers.get("content-length", "0")))
        if (
            headers.get("connection", "").lower() == "close"
            or len(self._idle) >= MAX_IDLE_CONNECTIONS
        ):
            _close(connection)
        else:
            self._idle.append(connection)
        return status, headers, body

    def close(self) -> None:
        while self._idle:
            _close(self._idle.pop())


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    parts = []
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
        if size == 0:
            await reader.readuntil(b"\r\n")
            return b"".join(parts)
        parts.append(await reader.readexactly(size))
        await reader.readexactly(2)


def _close(connection: Connection | None) -> None:
    if connection is not None:
        with contextlib.suppress(Exception):
            connection[1].close()
