"""What every benchmark reports besides its figures: machine and versions, a table, a JSON file."""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import psutil

REPO = Path(__file__).resolve().parent.parent


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


def percentiles(values: list[float]) -> dict[str, float]:
    array = np.array(values)
    return {
        "p50": float(np.percentile(array, 50)),
        "p95": float(np.percentile(array, 95)),
        "n": len(values),
    }
