"""Shared pieces of the mme_local benchmarks: the service process, clients, machine facts."""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil
from botocore.config import Config

from test_support.mme_local_harness import ServiceProcess as HarnessServiceProcess
from test_support.mme_local_harness import clients as harness_clients
from test_support.mme_local_harness import create_endpoint  # noqa: F401 - re-exported for the benchmarks

REPO = Path(__file__).resolve().parent.parent


class ServiceProcess(HarnessServiceProcess):
    """The tests' mme_local process as a context manager, with its JSON and metrics routes."""

    def __enter__(self) -> ServiceProcess:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def get_json(self, path: str) -> Any:
        with urllib.request.urlopen(self.url + path, timeout=10) as response:
            return json.loads(response.read())

    def metrics(self) -> dict[str, float]:
        with urllib.request.urlopen(self.url + "/metrics", timeout=10) as response:
            lines = response.read().decode().splitlines()
        values: dict[str, float] = {}
        for line in lines:
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                values[name] = float(value)
        return values


def clients(url: str, max_attempts: int = 5) -> tuple[Any, Any]:
    """The tests' boto3 clients, with a connection pool sized for the load benchmark."""
    config = Config(
        retries={"max_attempts": max_attempts, "mode": "standard"},
        read_timeout=120,
        max_pool_connections=64,
    )
    return harness_clients(url, config)


def cpu_name() -> str:
    with open("/proc/cpuinfo", encoding="utf-8") as info:
        for line in info:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return "unknown"


def machine_and_versions() -> dict[str, Any]:
    cpu = cpu_name()
    site = REPO / ".triton-env" / "lib" / "python3.11" / "site-packages"
    pytriton = [
        d.name.removesuffix(".dist-info").split("-")[1]
        for d in site.glob("nvidia_pytriton-*.dist-info")
    ]
    return {
        "machine": {
            "cpu": cpu,
            "cores": os.cpu_count(),
            "memory_gib": round(psutil.virtual_memory().total / 1024**3, 1),
            "load_average_at_start": os.getloadavg(),
            "platform": platform.platform(),
        },
        "versions": {
            "python": platform.python_version(),
            "nvidia-pytriton": pytriton[0] if pytriton else "missing",
            **{
                n: importlib.metadata.version(n) for n in ("boto3", "uvicorn", "starlette", "httpx")
            },
        },
    }


def write_results(name: str, results: dict[str, Any], out_dir: Path) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = out_dir / f"{name}-{stamp}.json"
    path.write_text(json.dumps(results, indent=2, default=str), encoding="utf-8")
    return path


def print_table(rows: list[tuple[str, str]]) -> None:
    width = max(len(label) for label, _ in rows)
    for label, value in rows:
        print(f"{label.ljust(width)}  {value}")
