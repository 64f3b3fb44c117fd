"""A Prefect process work pool for the tests: the onboarding deployment on it and real workers.

Each worker is `prefect worker start` in a process of its own; the flow runs it picks up run
in processes it starts, from this checkout, with the worker's environment (the test's
MME_FACTORY_* settings and PREFECT_API_URL).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from prefect import Flow
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import WorkPoolCreate

from test_support.servers import stop_process

REPO = Path(__file__).resolve().parent.parent
ONBOARDING_ENTRYPOINT = "flows/onboard_customer.py:onboard_customer"


def create_process_pool(pool: str) -> None:
    with get_client(sync_client=True) as client:
        client.create_work_pool(WorkPoolCreate(name=pool, type="process"))


def deploy_onboarding(pool: str, name: str = "onboard-customer") -> str:
    """The onboard-customer deployment on `pool`, run from this checkout; its full name."""
    flow = Flow.from_source(source=str(REPO), entrypoint=ONBOARDING_ENTRYPOINT)
    flow.deploy(name=name, work_pool_name=pool, print_next_steps=False, ignore_warnings=True)
    return f"{flow.name}/{name}"


class ProcessWorker:
    """`prefect worker start --type process` on `pool`, stopped by PID with its flow runs."""

    def __init__(self, pool: str, environ: dict[str, str], log_path: Path, limit: int = 1) -> None:
        self.pool, self.environ, self.log_path, self.limit = pool, environ, log_path, limit
        self.process: subprocess.Popen | None = None

    def start(self, timeout_s: float = 60.0) -> None:
        prefect = str(Path(sys.executable).with_name("prefect"))
        command = [prefect, "worker", "start", "--pool", self.pool, "--type", "process"]
        command += ["--limit", str(self.limit), "--name", f"{self.log_path.stem}"]
        environment = {
            **os.environ,
            **self.environ,
            "PREFECT_WORKER_QUERY_SECONDS": "1",
            "PREFECT_WORKER_HEARTBEAT_SECONDS": "5",
        }
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=environment,
                cwd=REPO,
                start_new_session=True,
            )
        self._wait_registered(timeout_s)

    def _wait_registered(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        name = self.log_path.stem
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"worker exited with {self.process.returncode}: {self.log_path}")
            with get_client(sync_client=True) as client:
                try:
                    workers = client.read_workers_for_work_pool(self.pool)
                except Exception:  # the pool is created by the worker's first poll
                    workers = []
            if any(worker.name == name for worker in workers):
                return
            time.sleep(0.5)
        self.stop()
        raise TimeoutError(f"worker {name} did not register within {timeout_s:.0f} s")

    def stop(self, timeout_s: float = 30.0) -> None:
        stop_process(self.process, timeout_s)
