"""A real Triton server with its SageMaker multi-model routes on.

`TritonRuntime` (runtime.py) finds the `tritonserver` binary, its Python
backend and the models' Python environment (`.triton-env`). `TritonServer` starts one server
process, waits for
`GET /ping` with a bound, and loads, invokes, lists and unloads models through the same routes
SageMaker's Triton container serves, so what works here works behind a SageMaker MME.
"""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from types import TracebackType

import psutil

from mme_factory.errors import MmeFactoryError
from mme_factory.process_identity import processes_running, stop_process_tree
from mme_factory.triton.process_memory import process_tree_memory
from mme_factory.triton.runtime import TritonRuntime

LOG_TAIL_CHARS = 4_000
# SageMaker's Triton container loads up to four models at once.
LOAD_THREADS = 4


class TritonError(MmeFactoryError):
    """Triton refused a request or failed; `status` keeps its HTTP status (507: out of memory)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"Triton answered {status}: {message}")
        self.status = status
        self.message = message


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class TritonServer:
    """One `tritonserver` process serving the SageMaker MME routes on loopback."""

    def __init__(
        self,
        runtime: TritonRuntime,
        workdir: Path,
        log_path: Path,
        http_port: int | None = None,
        load_threads: int = LOAD_THREADS,
    ) -> None:
        self.runtime = runtime
        self.load_threads = load_threads
        self.workdir = workdir
        self.log_path = log_path
        self.http_port = http_port or free_port()
        self.sagemaker_url = f"http://127.0.0.1:{self.http_port}"
        # Triton's SageMaker port holds every invoke while any model loads or unloads (1.4 s
        # and 1.8 s measured here); its KServe port answers invokes meanwhile.
        self.inference_port = free_port()
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def alive(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def command(self) -> list[str]:
        repository = self.workdir / "empty-repository"
        backends = self.workdir / "backends"
        return [
            str(self.runtime.binary),
            f"--model-repository={repository}",
            "--model-control-mode=explicit",
            f"--model-load-thread-count={self.load_threads}",
            f"--backend-directory={backends}",
            f"--backend-config=python,shm-default-byte-size={self.runtime.python_shm_default_bytes}",
            f"--backend-config=python,shm-growth-byte-size={self.runtime.python_shm_growth_bytes}",
            "--allow-sagemaker=true",
            f"--sagemaker-port={self.http_port}",
            "--allow-http=true",
            "--http-address=127.0.0.1",
            f"--http-port={self.inference_port}",
            "--allow-grpc=false",
            "--allow-metrics=false",
            "--exit-timeout-secs=5",
            "--log-verbose=0",
        ]

    def start(self, timeout_s: float = 60.0) -> None:
        """Start the server and wait until `GET /ping` answers, at most `timeout_s` seconds."""
        if self.alive:
            return
        self.runtime.check()
        (self.workdir / "empty-repository").mkdir(parents=True, exist_ok=True)
        self.runtime.prepare_backends(self.workdir / "backends")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                self.command(),
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.runtime.environment(),
                cwd=self.workdir,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not self.alive:
                code = self._process.returncode
                self._process = None
                raise MmeFactoryError(
                    f"tritonserver exited with {code} while starting; log {self.log_path}:\n"
                    + self.log_tail()
                )
            if self._ping():
                return
            time.sleep(0.2)
        self.stop()
        raise MmeFactoryError(
            f"tritonserver did not answer {self.sagemaker_url}/ping within {timeout_s:.0f} s; "
            f"log {self.log_path}:\n" + self.log_tail()
        )

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop the server by its PID: terminate, then kill; the stub processes go with it."""
        process, self._process = self._process, None
        # A reaped child's PID may already be someone else's: only signal one not yet waited for.
        if process is None or process.poll() is not None:
            return
        with contextlib.suppress(psutil.NoSuchProcess):
            stop_process_tree(psutil.Process(process.pid), timeout_s)
        process.poll()

    def stop_leftovers(self, timeout_s: float = 10.0) -> list[int]:
        """Stop what an earlier server of this workdir left running; their PIDs.

        After the owning service was killed the server itself survives; after the server was
        killed its Python-backend stubs do. Both are recognised by their exact executable and
        arguments naming this workdir, so nothing else (a `tail -f` of the log) is touched.
        """
        repository = f"--model-repository={self.workdir / 'empty-repository'}"
        stub = str(self.workdir / "backends" / "python" / "triton_python_backend_stub")
        own = self._process.pid if self._process is not None else None
        found = [
            *processes_running(str(self.runtime.binary), repository),
            *processes_running(stub),
        ]
        stopped = []
        for process in found:
            if process.pid != own:
                stop_process_tree(process, timeout_s)
                stopped.append(process.pid)
        return stopped

    def __enter__(self) -> TritonServer:
        self.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def load(self, name: str, model_dir: Path, timeout_s: float = 120.0) -> None:
        """Load the model repository in `model_dir` under `name` (SageMaker's `POST /models`)."""
        body = json.dumps({"model_name": name, "url": str(model_dir)}).encode()
        status, _, answer = self._request("POST", "/models", body, "application/json", timeout_s)
        if status != 200:
            raise TritonError(status, _message(answer))

    def unload(self, name: str) -> None:
        status, _, answer = self._request("DELETE", f"/models/{_quote(name)}", None, None, 60.0)
        if status != 200:
            raise TritonError(status, _message(answer))

    def invoke(
        self,
        name: str,
        body: bytes,
        content_type: str = "application/json",
        timeout_s: float = 60.0,
    ) -> tuple[int, dict[str, str], bytes]:
        """`POST /models/{name}/invoke`; returns Triton's status, headers and body unchanged."""
        return self._request(
            "POST", f"/models/{_quote(name)}/invoke", body, content_type, timeout_s
        )

    def list_models(self) -> list[str]:
        status, _, answer = self._request("GET", "/models", None, None, 10.0)
        if status != 200:
            raise TritonError(status, _message(answer))
        return [item["modelName"] for item in json.loads(answer).get("models", [])]

    def resident_memory_bytes(self) -> int:
        """Resident memory of tritonserver plus every stub process it started."""
        if not self.alive or self.pid is None:
            return 0
        return process_tree_memory(self.pid)

    def log_tail(self, chars: int = LOG_TAIL_CHARS) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return "(no log)"
        return text[-chars:]

    def _ping(self) -> bool:
        try:
            status, _, _ = self._request("GET", "/ping", None, None, 2.0)
        except TritonError:
            return False
        return status == 200

    def _request(
        self,
        method: str,
        path: str,
        body: bytes | None,
        content_type: str | None,
        timeout_s: float,
    ) -> tuple[int, dict[str, str], bytes]:
        request = urllib.request.Request(self.sagemaker_url + path, data=body, method=method)
        if content_type is not None:
            request.add_header("Content-Type", content_type)
        try:
            with urllib.request.urlopen(request, timeout=timeout_s) as response:
                return response.status, dict(response.headers.items()), response.read()
        except urllib.error.HTTPError as error:
            return error.code, dict(error.headers.items()), error.read()
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError) as error:
            raise TritonError(503, f"{method} {path} failed: {error}") from None


def _quote(name: str) -> str:
    return urllib.parse.quote(name, safe="")


def _message(body: bytes) -> str:
    """Triton's error text from a JSON `{"error": ...}` body, or the raw body."""
    text = body.decode("utf-8", errors="replace")
    try:
        loaded = json.loads(text)
    except ValueError:
        return text.strip()
    if isinstance(loaded, dict) and "error" in loaded:
        return str(loaded["error"])
    return text.strip()
