"""The Prefect half of the local stack: a Prefect server (SQLite in the state directory) and
the process serving the deployments. Each runs in the background with its log and PID file
under `<state_dir>/stack/`, and is stopped by PID.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from mme_factory.errors import MmeFactoryError
from mme_factory.settings import Settings

PREFECT_PORT = 4200


class StackError(MmeFactoryError):
    """A local service would not start, or did not answer in time."""


@dataclass(frozen=True)
class Service:
    name: str
    command: list[str]
    health_url: str | None
    env: dict[str, str]


def stack_dir(settings: Settings) -> Path:
    return (settings.state_dir / "stack").resolve()


def prefect_api_url(port: int = PREFECT_PORT) -> str:
    return f"http://127.0.0.1:{port}/api"


def prefect_env(settings: Settings, port: int = PREFECT_PORT) -> dict[str, str]:
    home = (settings.state_dir / "prefect").resolve()
    return {
        "PREFECT_HOME": str(home),
        "PREFECT_API_URL": prefect_api_url(port),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_UI_ENABLED": "true",
        "PREFECT_SERVER_API_HOST": "127.0.0.1",
        "PREFECT_SERVER_API_PORT": str(port),
    }


def prefect_services(settings: Settings, port: int = PREFECT_PORT) -> list[Service]:
    env = prefect_env(settings, port)
    prefect = str(Path(sys.executable).with_name("prefect"))
    return [
        Service(
            "prefect-server",
            [prefect, "server", "start", "--host", "127.0.0.1", "--port", str(port)],
            f"{prefect_api_url(port)}/health",
            env,
        ),
        Service("deployments", [sys.executable, "-m", "deployments.serve"], None, env),
    ]


def pid_of(settings: Settings, name: str) -> int | None:
    path = stack_dir(settings) / f"{name}.pid"
    try:
        pid = int(path.read_text())
    except (FileNotFoundError, ValueError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        path.unlink(missing_ok=True)
        return None
    return pid


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status < 500
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


def start(settings: Settings, service: Service, timeout_s: float) -> int:
    """Start `service` unless it already runs; return its PID once it answers."""
    running = pid_of(settings, service.name)
    if running:
        return running
    directory = stack_dir(settings)
    directory.mkdir(parents=True, exist_ok=True)
    log = directory / f"{service.name}.log"
    with log.open("ab") as handle:
        process = subprocess.Popen(
            service.command,
            stdout=handle,
            stderr=subprocess.STDOUT,
            env={**os.environ, **service.env},
            start_new_session=True,
            cwd=Path(__file__).resolve().parent.parent,
        )
    (directory / f"{service.name}.pid").write_text(str(process.pid))
    deadline = time.monotonic() + timeout_s
    while service.health_url and not answers(service.health_url):
        if process.poll() is not None or time.monotonic() > deadline:
            stop(settings, service.name)
            tail = log.read_text(errors="replace")[-2000:]
            raise StackError(
                f"{service.name} did not answer {service.health_url} within "
                f"{timeout_s:.0f} s; log {log}:\n{tail}"
            )
        time.sleep(0.5)
    if service.health_url is None:
        time.sleep(1.0)
        if process.poll() is not None:
            raise StackError(f"{service.name} exited at start; see {log}")
    return process.pid


def stop(settings: Settings, name: str, timeout_s: float = 15.0) -> bool:
    """Stop a service's process group by PID: SIGTERM, then SIGKILL. True if it was running."""
    pid = pid_of(settings, name)
    if pid is None:
        return False
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.2)
    else:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
    (stack_dir(settings) / f"{name}.pid").unlink(missing_ok=True)
    return True


def status(settings: Settings, service: Service) -> dict[str, object]:
    pid = pid_of(settings, service.name)
    healthy = bool(pid) and (service.health_url is None or answers(service.health_url))
    url = service.health_url.rsplit("/api", 1)[0] if service.health_url else None
    return {
        "pid": pid,
        "url": url,
        "healthy": healthy,
        "log": str(stack_dir(settings) / f"{service.name}.log"),
    }


def status_json(settings: Settings) -> str:
    return json.dumps({s.name: status(settings, s) for s in prefect_services(settings)}, indent=2)
