"""A loopback HTTP front for a SageMaker runtime API that fails on purpose, then forwards.

Each request takes the next fault off a list: an AWS error answered as SageMaker answers it
(status, `x-amzn-ErrorType`, JSON body), or a reset connection (closed with no answer). With
no faults left it forwards the request to the upstream service and relays the answer (or,
without an upstream, gives a fixed answer). It can
also be started late on a port chosen up front, so that the first calls find it refused.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import struct
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlparse

from mme_factory.protocol import (
    CUSTOM_ATTRIBUTES_HEADER,
    ERROR_TYPE_HEADER,
    JSON_CONTENT_TYPE,
    REQUEST_ID_HEADER,
    TARGET_MODEL_HEADER,
)
from test_support.servers import free_port

RESET = "reset"
FORWARDED_HEADERS = ("content-type", TARGET_MODEL_HEADER, CUSTOM_ATTRIBUTES_HEADER)
RELAYED_HEADERS = ("content-type", ERROR_TYPE_HEADER.lower(), REQUEST_ID_HEADER.lower())


@dataclass(frozen=True)
class AwsFault:
    status: int
    code: str
    message: str


class FaultyFront:
    def __init__(
        self,
        upstream: str | None,
        faults: list[AwsFault | str] | None = None,
        answer: tuple[str, bytes] = ("application/json", b"{}"),
    ) -> None:
        self.upstream = urlparse(upstream) if upstream else None
        self.answer = answer
        self.faults = list(faults or [])
        self.requests = 0
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def next_fault(self) -> AwsFault | str | None:
        with self._lock:
            self.requests += 1
            return self.faults.pop(0) if self.faults else None

    def start(self) -> FaultyFront:
        front = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_: object) -> None:
                return

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                fault = front.next_fault()
                if fault == RESET:
                    # SO_LINGER 0: close() sends a TCP reset, as a crashed server would.
                    self.connection.setsockopt(
                        socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                    )
                    self.close_connection = True
                    self.connection.close()
                    return
                if isinstance(fault, AwsFault):
                    self._answer(
                        fault.status,
                        {"Content-Type": JSON_CONTENT_TYPE, ERROR_TYPE_HEADER: fault.code},
                        json.dumps({"message": fault.message}).encode(),
                    )
                    return
                status, headers, answer = front.forward(self.path, body, self.headers)
                self._answer(status, headers, answer)

            def _answer(self, status: int, headers: dict[str, str], body: bytes) -> None:
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def forward(self, path: str, body: bytes, headers: object) -> tuple[int, dict[str, str], bytes]:
        if self.upstream is None:
            return 200, {"Content-Type": self.answer[0]}, self.answer[1]
        sent = {name: headers.get(name) for name in FORWARDED_HEADERS if headers.get(name)}  # type: ignore[attr-defined]
        connection = http.client.HTTPConnection(
            self.upstream.hostname, self.upstream.port, timeout=120
        )
        try:
            connection.request("POST", path, body, sent)
            response = connection.getresponse()
            answer = response.read()
            kept = {
                name: value
                for name, value in response.getheaders()
                if name.lower() in RELAYED_HEADERS
            }
            return response.status, kept, answer
        finally:
            connection.close()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def __enter__(self) -> FaultyFront:
        return self.start()

    def __exit__(self, *_: object) -> None:
        with contextlib.suppress(Exception):
            self.stop()
