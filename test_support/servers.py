"""Real servers the tests start on loopback: free ports, bounded waits, stopped by PID."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import psutil

from mme_factory.process_identity import stop_process_tree


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_http(url: str, timeout_s: float, process: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode} before answering {url}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.2)
    raise TimeoutError(f"{url} did not answer within {timeout_s:.0f} s")


def stop_process(process: subprocess.Popen | None, timeout_s: float) -> None:
    """Terminate a process the tests started (kill it if it does not exit in time), then
    whatever it started and left behind."""
    if process is None or process.poll() is not None:
        return
    with contextlib.suppress(psutil.NoSuchProcess):
        stop_process_tree(psutil.Process(process.pid), timeout_s)
    process.wait(timeout=timeout_s)


class MotoServer:
    """moto's standalone server (a real S3 API over HTTP), its conditional writes atomic."""

    def __init__(self, log_path: Path) -> None:
        self.log_path = log_path
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None

    def start(self, timeout_s: float = 30.0) -> None:
        server = [sys.executable, "-m", "test_support.moto_atomic_server"]
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [*server, "127.0.0.1", str(self.port)],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            wait_for_http(f"{self.url}/moto-api/", timeout_s, self.process)
        except Exception:
            self.stop()
            raise

    def stop(self, timeout_s: float = 10.0) -> None:
        stop_process(self.process, timeout_s)
