"""The local stack's background services: start, stop and report them by PID.

Each service writes its log to `<state_dir>/logs/<name>.log` and its PID to
`<state_dir>/run/<name>.pid`. `local_services` lists them; the Prefect pieces join it later.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import psutil

from mme_factory.errors import MmeFactoryError
from mme_factory.settings import Settings


@dataclass(frozen=True)
class LocalService:
    name: str
    command: tuple[str, ...]
    url: str
    health_path: str
    start_timeout_s: float
    state_dir: Path

    @property
    def pid_file(self) -> Path:
        return self.state_dir / "run" / f"{self.name}.pid"

    @property
    def log_file(self) -> Path:
        return self.state_dir / "logs" / f"{self.name}.log"


def local_services(settings: Settings, settings_path: str | None = None) -> list[LocalService]:
    command = [sys.executable, "-m", "mme_local"]
    if settings_path:
        command += ["--settings", settings_path]
    return [
        LocalService(
            name="mme_local",
            command=tuple(command),
            url=settings.mme_local.url,
            health_path="/ping",
            start_timeout_s=settings.mme_local.start_timeout_s,
            state_dir=settings.state_dir,
        )
    ]


def running_pid(service: LocalService) -> int | None:
    """The PID in the service's PID file when that process still runs."""
    try:
        pid = int(service.pid_file.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None
    try:
        if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
            return None
    except psutil.NoSuchProcess:
        return None
    return pid


def healthy(service: LocalService, timeout_s: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(service.url + service.health_path, timeout=timeout_s):
            return True
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
        return False


def start(service: LocalService) -> int:
    """Start the service in the background; return its PID once it answers."""
    pid = running_pid(service)
    if pid is not None and healthy(service):
        return pid
    if healthy(service):
        raise MmeFactoryError(
            f"{service.url} already answers but not from a process this state dir started; "
            f"stop it or change the port ({service.name})"
        )
    service.log_file.parent.mkdir(parents=True, exist_ok=True)
    service.pid_file.parent.mkdir(parents=True, exist_ok=True)
    with service.log_file.open("ab") as log:
        process = subprocess.Popen(
            service.command,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=dict(os.environ),
        )
    service.pid_file.write_text(f"{process.pid}\n")
    deadline = time.monotonic() + service.start_timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            service.pid_file.unlink(missing_ok=True)
            raise MmeFactoryError(
                f"{service.name} exited with {process.returncode} while starting; "
                f"see {service.log_file}"
            )
        if healthy(service, timeout_s=1.0):
            return process.pid
        time.sleep(0.2)
    stop(service)
    raise MmeFactoryError(
        f"{service.name} did not answer {service.url} within {service.start_timeout_s:.0f} s; "
        f"see {service.log_file}"
    )


def stop(service: LocalService, timeout_s: float = 30.0) -> bool:
    """Stop the service by its PID (terminate, then kill); False when it was not running."""
    pid = running_pid(service)
    service.pid_file.unlink(missing_ok=True)
    if pid is None:
        return False
    process = psutil.Process(pid)
    with contextlib.suppress(psutil.NoSuchProcess):
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout_s)
        except psutil.TimeoutExpired:
            process.kill()
            process.wait(timeout=timeout_s)
    return True


def status(service: LocalService) -> dict[str, object]:
    pid = running_pid(service)
    return {
        "url": service.url,
        "pid": pid,
        "running": pid is not None,
        "healthy": healthy(service) if pid is not None else False,
        "log": str(service.log_file),
    }
