"""The local stack's background services: start, stop and report them by PID.

Each service writes its log to `<state_dir>/logs/<name>.log` and its identity (PID, start time,
executable, command line) to `<state_dir>/run/<name>.pid`; a PID whose process no longer matches
that record belongs to someone else and is never signalled. `local_services` lists them in
start order: mme_local, a Prefect server (SQLite under `<state_dir>/prefect`), and a worker of the
`mme-factory-local` process pool, healthy once the server counts it online.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import psutil

from deployments.work_pools import LOCAL_POOL, online_workers
from mme_factory.errors import MmeFactoryError
from mme_factory.process_identity import ProcessIdentity, stop_process_tree
from mme_factory.settings import Settings

WORKER = "worker"


@dataclass(frozen=True)
class WorkerCheck:
    """A worker is healthy while the server counts it online in its pool."""

    api_url: str
    pool: str
    name: str

    def online(self, timeout_s: float) -> bool:
        return self.name in online_workers(self.api_url, self.pool, timeout_s)


@dataclass(frozen=True)
class LocalService:
    name: str
    command: tuple[str, ...]
    url: str
    health_path: str | None  # None: running is healthy, or the worker check says
    start_timeout_s: float
    state_dir: Path
    env: tuple[tuple[str, str], ...] = ()
    worker: WorkerCheck | None = None

    @property
    def pid_file(self) -> Path:
        return self.state_dir / "run" / f"{self.name}.pid"

    @property
    def log_file(self) -> Path:
        return self.state_dir / "logs" / f"{self.name}.log"


def prefect_api_url(port: int) -> str:
    return f"http://127.0.0.1:{port}/api"


def prefect_environment(settings: Settings) -> dict[str, str]:
    port = settings.prefect.port
    return {
        "PREFECT_HOME": str((settings.state_dir / "prefect").resolve()),
        "PREFECT_API_URL": prefect_api_url(port),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        # Training progress (steps, loss) is logged by `mme_factory.*`; show it in the UI.
        "PREFECT_LOGGING_EXTRA_LOGGERS": "mme_factory",
        "PREFECT_SERVER_API_HOST": "127.0.0.1",
        "PREFECT_SERVER_API_PORT": str(port),
    }


def local_services(settings: Settings, settings_path: str | None = None) -> list[LocalService]:
    command = [sys.executable, "-m", "mme_local"]
    if settings_path:
        command += ["--settings", settings_path]
    prefect_env = dict(prefect_environment(settings))
    if settings_path:
        prefect_env["MME_FACTORY_SETTINGS"] = str(Path(settings_path).resolve())
    prefect = str(Path(sys.executable).with_name("prefect"))
    return [
        LocalService(
            name="mme_local",
            command=tuple(command),
            url=settings.mme_local.url,
            health_path="/ping",
            start_timeout_s=settings.mme_local.start_timeout_s,
            state_dir=settings.state_dir,
        ),
        LocalService(
            name="prefect_server",
            command=(
                prefect,
                "server",
                "start",
                "--host",
                "127.0.0.1",
                "--port",
                str(settings.prefect.port),
            ),
            url=f"http://127.0.0.1:{settings.prefect.port}",
            health_path="/api/health",
            start_timeout_s=settings.prefect.start_timeout_s,
            state_dir=settings.state_dir,
            env=tuple(prefect_env.items()),
        ),
        worker_service(settings, prefect_env),
    ]


def worker_service(settings: Settings, env: dict[str, str]) -> LocalService:
    worker_name = f"{LOCAL_POOL.name}-worker"
    return LocalService(
        name=WORKER,
        command=(
            str(Path(sys.executable).with_name("prefect")),
            "worker",
            "start",
            "--pool",
            LOCAL_POOL.name,
            "--type",
            LOCAL_POOL.type,
            "--name",
            worker_name,
            "--limit",
            str(settings.prefect.worker_limit),
        ),
        url=f"http://127.0.0.1:{settings.prefect.port}/work-pools/work-pool/{LOCAL_POOL.name}",
        health_path=None,
        start_timeout_s=settings.prefect.worker_start_timeout_s,
        state_dir=settings.state_dir,
        # Poll every 2 s, not 10: a run started from the UI or `make demo` starts at once.
        env=(*env.items(), ("PREFECT_WORKER_QUERY_SECONDS", "2")),
        worker=WorkerCheck(prefect_api_url(settings.prefect.port), LOCAL_POOL.name, worker_name),
    )


def running_process(service: LocalService) -> psutil.Process | None:
    """The process the service's PID file records, while that same process still runs."""
    try:
        identity = ProcessIdentity.from_json(service.pid_file.read_text())
    except FileNotFoundError:
        return None
    return identity.process() if identity is not None else None


def running_pid(service: LocalService) -> int | None:
    """The PID in the service's PID file when that process still runs and is the one started."""
    process = running_process(service)
    return process.pid if process is not None else None


def healthy(service: LocalService, timeout_s: float = 2.0) -> bool:
    if service.health_path is None:
        alive = running_pid(service) is not None
        return alive and (service.worker is None or service.worker.online(timeout_s))
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
    if pid is not None and service.worker is not None:
        stop(service)  # runs but is offline (e.g. its server restarted): start a fresh one
    if service.health_path is not None and healthy(service):
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
            env={**os.environ, **dict(service.env)},
        )
    with contextlib.suppress(psutil.NoSuchProcess):  # exited at once: the poll below reports it
        service.pid_file.write_text(ProcessIdentity.of(process.pid).to_json())
    deadline = time.monotonic() + service.start_timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            service.pid_file.unlink(missing_ok=True)
            raise MmeFactoryError(
                f"{service.name} exited with {process.returncode} while starting; "
                f"see {service.log_file}"
            )
        if service.health_path is None and service.worker is None:
            time.sleep(min(2.0, service.start_timeout_s))
            if process.poll() is None:
                return process.pid
            continue
        if healthy(service, timeout_s=1.0):
            return process.pid
        time.sleep(0.2)
    # Stopped by the handle that started it, not through the PID file: nothing to recognise.
    service.pid_file.unlink(missing_ok=True)
    with contextlib.suppress(psutil.NoSuchProcess):
        stop_process_tree(psutil.Process(process.pid))
    awaited = (
        f"come online in work pool {service.worker.pool}"
        if service.worker is not None
        else f"answer {service.url}"
    )
    raise MmeFactoryError(
        f"{service.name} did not {awaited} within {service.start_timeout_s:.0f} s; "
        f"see {service.log_file}"
    )


def stop(service: LocalService, timeout_s: float = 30.0) -> bool:
    """Stop the service (terminate, then kill) and its children; False when it was not running.

    Only the process its PID file records is signalled, and only while it is that process.
    """
    process = running_process(service)
    service.pid_file.unlink(missing_ok=True)
    if process is None:
        return False
    # A service's own children (Prefect's workers, Triton) must not outlive it.
    stop_process_tree(process, timeout_s)
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
