"""The invoke hot path's HTTP client against a scripted loopback server."""

from __future__ import annotations

import asyncio

import pytest

from mme_factory.triton import TritonError
from mme_local.runtime.triton_http import TritonHttpClient


async def _serve(answers: list[bytes], close_after_each: bool = False) -> asyncio.Server:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while answers:
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
            await reader.readexactly(length)
            writer.write(answers.pop(0))
            await writer.drain()
            if close_after_each:
                break
        writer.close()

    return await asyncio.start_server(handle, "127.0.0.1", 0)


def _port(server: asyncio.Server) -> int:
    return server.sockets[0].getsockname()[1]


def test_keep_alive_connection_is_reused_and_headers_lowercased():
    async def main() -> None:
        ok = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
        server = await _serve([ok, ok])
        client = TritonHttpClient("127.0.0.1", _port(server), 5.0)
        for _ in range(2):
            status, headers, body = await client.post("/models/m/invoke", b"{}", "application/json")
            assert (status, headers["content-type"], body) == (200, "application/json", b"{}")
        assert client.idle_connections == 1
        client.close()
        server.close()

    asyncio.run(main())


def test_chunked_answer_is_read_whole():
    async def main() -> None:
        chunked = (
            b"HTTP/1.1 400 Bad Request\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
        )
        server = await _serve([chunked])
        client = TritonHttpClient("127.0.0.1", _port(server), 5.0)
        status, _, body = await client.post("/x", b"", "application/json")
        assert (status, body) == (400, b"hello world")
        client.close()
        server.close()

    asyncio.run(main())


def test_stale_pooled_connection_is_retried_once_on_a_fresh_one():
    async def main() -> None:
        ok = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
        server = await _serve([ok, ok], close_after_each=True)
        client = TritonHttpClient("127.0.0.1", _port(server), 5.0)
        assert (await client.post("/x", b"", "a/b"))[0] == 200
        await asyncio.sleep(0.05)
        assert (await client.post("/x", b"", "a/b"))[0] == 200
        client.close()
        server.close()

    asyncio.run(main())


def test_unreachable_server_is_a_503_triton_error():
    async def main() -> None:
        server = await _serve([])
        port = _port(server)
        server.close()
        await server.wait_closed()
        with pytest.raises(TritonError) as caught:
            await TritonHttpClient("127.0.0.1", port, 5.0).post("/x", b"", "a/b")
        assert caught.value.status == 503

    asyncio.run(main())
