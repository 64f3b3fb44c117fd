"""The unit tier starts no process and opens no network connection: a test that does fails here
and belongs in tests/component."""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest


class TierViolation(AssertionError):
    pass


@pytest.fixture(autouse=True)
def no_processes_or_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    def refuse_process(self: subprocess.Popen[Any], args: Any, *rest: Any, **kwargs: Any) -> None:
        raise TierViolation(f"a unit test started a process: {args!r}; move it to tests/component")

    def refuse_connect(self: socket.socket, address: Any) -> None:
        if self.family == socket.AF_UNIX:
            return original_connect(self, address)
        raise TierViolation(f"a unit test connected to {address!r}; move it to tests/component")

    original_connect = socket.socket.connect
    monkeypatch.setattr(subprocess.Popen, "_execute_child", refuse_process)
    monkeypatch.setattr(socket.socket, "connect", refuse_connect)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse_connect)
    yield
