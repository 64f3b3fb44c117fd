"""The hourly warm-up at scale: many TargetModels on the three local endpoints (loopback only).

    .venv/bin/python bench/bench_warmup_scale.py [--models 100] [--budget 4GiB] [--out DIR]

Setup, as onboarding does it: `--models / 4` customers, each with its own four tiny randomly
initialised models (tests/fixtures/tiny_exports.py, one seed per customer: embedding query and
article encoders, classifier, autocomplete), packaged by `package_run`, registered by
`register_package` (endpoint created when missing, tarball uploaded under its prefix) and
promoted by `promote_entries`. There is no smoke inference, so every model starts cold. A real
`python -m mme_local` process serves the three endpoints, each with its own Triton and a model
cache of `--budget` resident memory.

Passes, each timed around the code the hourly flow runs (`warm_all`, given a subset or not):
- cold: every model, the first call after registration, at `sagemaker.warmup_concurrency`;
- warm: a quarter, half and all of the models still loaded, at each of CONCURRENCIES, the
  median of WARM_REPEATS passes;
- warm all: every model again at the default concurrency. When they do not all fit the budget
  this pass reloads every evicted model (a sequential pass in LRU order misses on each), so it
  costs about what the cold pass did and runs only within `--time-budget`;
- cold after restart: the service restarted (everything cold again), the first COLD_MODELS at
  each of COLD_CONCURRENCIES, within `--time-budget`.

The default is the hourly warm-up of 100 TargetModels under a model cache of 4 GiB per
endpoint. Every Python-backend model is a stub process importing torch or tokenizers, so a tiny
TargetModel costs about 300 MB resident (some 185 MB of it private) and 3-5 s to load, and an
endpoint loads one model at a time. 100 of them do not fit this 24 GiB machine at once; 4 GiB
per endpoint keeps about 36 loaded, so the cold pass also evicts, and the warm passes cover the
subsets that stay loaded. It takes about 6 minutes here. `--models 40 --budget 12.8GiB` is the
run where every model fits. A budget that could load more than the machine can spare is
refused before anything starts.
Loads, evictions and memory come from the service's /metrics and /mme-local/endpoints/<name>.
Prints a table; writes JSON under bench/results/.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import tempfile
import threading
import time
from collections import defaultdict
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import psutil
from bench_report import machine_and_versions, print_table, write_results
from warmup_scale_report import table

from mme_factory.aws_clients import sagemaker_client
from mme_factory.manifest import RegisteredTarget, registered_targets
from mme_factory.model_kinds import ModelKind
from mme_factory.naming import endpoint_name_for
from mme_factory.settings import Settings, load_settings
from mme_factory.store import open_store
from mme_factory.triton.process_memory import process_tree_memory
from tasks.deployment.customer_lock import customer_lock
from tasks.deployment.promote import manifest_entry, promote
from tasks.deployment.register_mme import register_mme, wait_in_service
from tasks.deployment.warmup_models import warm_models
from tasks.packaging.package_triton import PackageSummary, package_triton
from test_support.mme_local_harness import ServiceProcess
from test_support.tiny_exports import write_tiny_run

REPO = Path(__file__).resolve().parent.parent

ENV = "bench"
ENDPOINTS = [endpoint_name_for(str(kind), ENV) for kind in ModelKind]
MODELS_PER_CUSTOMER = 4  # embedding-query, embedding-article, classifier, autocomplete
SIZE_DIVISORS = (4, 2, 1)
CONCURRENCIES = (1, 4, 16)
WARM_REPEATS = 3
COLD_MODELS = 8
COLD_CONCURRENCIES = (1, 8)
GIB = 1024**3
# Measured here for the tiny models: resident memory per loaded TargetModel as the budget counts
# it (largest kind, the classifier), its private part, and what the rest of the machine keeps.
RSS_PER_MODEL = 330 * 1024**2
PRIVATE_PER_MODEL = 200 * 1024**2
MEMORY_RESERVE = 4 * GIB


class DiscardedConnections(logging.Filter):
    """Counts urllib3's "Connection pool is full" warnings and keeps them off the output.

    botocore keeps 10 connections per client, so a warm-up with more threads than that opens
    and drops a connection on most calls; the count says how often.
    """

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def filter(self, record: logging.LogRecord) -> bool:
        if "Connection pool is full" in record.getMessage():
            self.count += 1
            return False
        return True


DISCARDED = DiscardedConnections()


def check_memory_is_safe(models: int, budget_bytes: int) -> None:
    """Refuse a budget under which the Tritons could take memory the machine cannot spare."""
    loadable = min(models, len(ENDPOINTS) * (budget_bytes // RSS_PER_MODEL + 1))
    needed, available = loadable * PRIVATE_PER_MODEL, psutil.virtual_memory().available
    if needed > available - MEMORY_RESERVE:
        raise SystemExit(
            f"{loadable} of {models} models can be loaded at once under a budget of "
            f"{budget_bytes / GIB:.1f} GiB per endpoint: about {needed / GIB:.1f} GiB, and "
            f"this machine has {available / GIB:.1f} GiB available. Pass a smaller --budget "
            "(4GiB holds about 36 models) or fewer --models."
        )


def build_packages(work: Path, customers: int, settings: Settings) -> list[PackageSummary]:
    """Each customer's four tiny models, exported and packaged; seeds differ per customer."""
    summaries = []
    for index in range(customers):
        run = write_tiny_run(work / "runs", f"cust{index:03d}", "bench", seed=1000 + 10 * index)
        summaries.append(package_triton(run, settings, version="v1"))
    return summaries


def register_and_promote(summaries: list[PackageSummary], settings: Settings) -> None:
    """Version 1 of every customer's models on its endpoints, then the customer's manifest."""
    store = open_store(settings.store, settings)
    for summary in summaries:
        with customer_lock(store, summary.customer, settings.sagemaker.lock_wait_s):
            by_kind = defaultdict(list)
            for package in summary.packages:
                by_kind[package.kind].append(register_mme(package, 1, settings))
            entries = {
                kind: manifest_entry(group, {}, summary.run_id) for kind, group in by_kind.items()
            }
            promote(store, summary.customer, entries)


def stack_environ(work: Path, budget: str | None) -> dict[str, str]:
    environ = {
        "MME_FACTORY_STATE_DIR": str(work / "state"),
        "MME_FACTORY_STORE": str(work / "store"),
        "MME_FACTORY_ENV": ENV,
        "MME_FACTORY_SAGEMAKER__WAIT_DELAY_S": "1",
    }
    return environ | ({"MME_FACTORY_MEMORY__BUDGET": budget} if budget else {})


def pipeline_settings(environ: dict[str, str], service: ServiceProcess) -> Settings:
    return load_settings(
        environ={
            **environ,
            "MME_FACTORY_ENDPOINTS__SAGEMAKER_ENDPOINT_URL": service.url,
            "MME_FACTORY_ENDPOINTS__SAGEMAKER_RUNTIME_ENDPOINT_URL": service.url,
        }
    )


def metric_total(metrics: dict[str, float], name: str) -> int:
    return int(sum(value for key, value in metrics.items() if key.partition("{")[0] == name))


def timed_pass(
    service: ServiceProcess,
    settings: Settings,
    targets: list[RegisteredTarget] | None,
    concurrency: int,
    state: str,
) -> dict[str, Any]:
    """One warm-up pass (every registered model when `targets` is None) and what it cost."""
    before, discarded = service.metrics(), DISCARDED.count
    started = time.perf_counter()
    results = warm_models(settings, concurrency, targets)
    wall_s = time.perf_counter() - started
    after = service.metrics()
    latencies = np.array([r.latency_ms for r in results])
    failed = [r for r in results if r.status != "ok"]
    return {
        "models": len(results),
        "concurrency": concurrency,
        "state": state,
        "wall_s": round(wall_s, 3),
        "p50_ms": round(float(np.percentile(latencies, 50)), 1),
        "p95_ms": round(float(np.percentile(latencies, 95)), 1),
        "max_ms": round(float(latencies.max()), 1),
        "cold": sum(r.state == "cold" for r in results),
        "warm": sum(r.state == "warm" for r in results),
        "retried": sum(r.attempts > 1 for r in results),
        "failures": len(failed),
        "failures_sample": [f"{r.target_model}: {r.error}" for r in failed[:5]],
        "loads": metric_total(after, "ModelLoadingTime_count")
        - metric_total(before, "ModelLoadingTime_count"),
        "evictions": metric_total(after, "ModelEvictions") - metric_total(before, "ModelEvictions"),
        "connections_discarded": DISCARDED.count - discarded,
        "per_model": [asdict(r) for r in results],
    }


def median_of_repeats(
    service: ServiceProcess, settings: Settings, targets: list[RegisteredTarget], concurrency: int
) -> dict[str, Any]:
    passes = [
        timed_pass(service, settings, targets, concurrency, "warm") for _ in range(WARM_REPEATS)
    ]
    walls = [p["wall_s"] for p in passes]
    median = passes[walls.index(statistics.median_low(walls))]
    return {**median, "wall_s_repeats": walls}


def loaded_target_models(service: ServiceProcess) -> set[tuple[str, str]]:
    """(endpoint, TargetModel) of every model the endpoints hold loaded right now."""
    loaded = set()
    for endpoint in ENDPOINTS:
        for model in service.get_json(f"/mme-local/endpoints/{endpoint}")["models"]:
            loaded.add((endpoint, model["target_model"]))
    return loaded


def endpoint_memory(service: ServiceProcess) -> dict[str, dict[str, Any]]:
    """Per endpoint: models loaded, resident memory per model as the service measured it, and
    the Triton process tree's RSS and private (USS) memory, which shared libraries do not
    inflate."""
    memory = {}
    for endpoint in ENDPOINTS:
        state = service.get_json(f"/mme-local/endpoints/{endpoint}")
        per_model = [model["memory_bytes"] for model in state["models"]]
        memory[endpoint] = {
            "loaded": len(per_model),
            "rss_per_model_median_bytes": int(np.median(per_model)) if per_model else 0,
            "tree_rss_bytes": process_tree_memory(state["triton_pid"]),
            "tree_uss_bytes": process_tree_memory(state["triton_pid"], unique=True),
            "peak_rss_bytes": state["peak_memory_bytes"],
            "budget_bytes": state["budget_bytes"],
        }
    return memory


class AvailableMemoryWatch:
    """The least memory the machine had available while the benchmark ran (0.5 s samples)."""

    def __init__(self) -> None:
        self.lowest = psutil.virtual_memory().available
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> AvailableMemoryWatch:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _sample(self) -> None:
        while not self._stop.wait(0.5):
            self.lowest = min(self.lowest, psutil.virtual_memory().available)


def warm_subsets(
    service: ServiceProcess, settings: Settings, targets: list[RegisteredTarget]
) -> list[dict[str, Any]]:
    """Warm passes over the loaded models, for each size that fits, at each concurrency."""
    loaded = loaded_target_models(service)
    warm = [t for t in targets if (t.endpoint, t.target_model) in loaded]
    sizes = sorted({len(targets) // divisor for divisor in SIZE_DIVISORS})
    passes = []
    for size in sizes:
        if size > len(warm):
            passes.append({"models": size, "state": f"skipped: {len(warm)} loaded"})
            continue
        for concurrency in CONCURRENCIES:
            passes.append(median_of_repeats(service, settings, warm[:size], concurrency))
    return passes


def on_first_stack(
    environ: dict[str, str], summaries: list[PackageSummary], work: Path, deadline: float
) -> dict[str, Any]:
    """Register everything, then the cold pass, the warm passes and, if time allows, warm all."""
    with ServiceProcess(environ, work / "service.log") as service:
        settings = pipeline_settings(environ, service)
        started = time.monotonic()
        register_and_promote(summaries, settings)
        register_s = time.monotonic() - started
        targets = registered_targets(open_store(settings.store, settings))
        default = settings.sagemaker.warmup_concurrency
        cold = timed_pass(service, settings, None, default, "cold")
        memory = endpoint_memory(service)
        fits = len(loaded_target_models(service)) == len(targets)
        subsets = warm_subsets(service, settings, targets)
        warm_all_pass = None
        if fits or time.monotonic() + cold["wall_s"] < deadline:
            state = "warm all" if fits else "all, after evictions"
            warm_all_pass = timed_pass(service, settings, None, default, state)
    return {
        "settings": settings,
        "targets": targets,
        "register_s": register_s,
        "fits": fits,
        "memory": memory,
        "passes": {"cold": cold, "warm_subsets": subsets, "warm_all": warm_all_pass},
    }


def cold_after_restart(
    environ: dict[str, str], work: Path, targets: list[RegisteredTarget]
) -> list[dict[str, Any]]:
    """The first COLD_MODELS, cold, at each of COLD_CONCURRENCIES: a fresh service per pass."""
    passes = []
    for concurrency in COLD_CONCURRENCIES:
        with ServiceProcess(environ, work / "service.log") as service:
            settings = pipeline_settings(environ, service)
            for endpoint in ENDPOINTS:
                wait_in_service(sagemaker_client(settings), settings, endpoint)
            subset = targets[:COLD_MODELS]
            passes.append(timed_pass(service, settings, subset, concurrency, "cold, restarted"))
    return passes


def restarts_fit(cold_pass: dict[str, Any], deadline: float) -> bool:
    """Whether the restarted cold passes should end before the deadline, judged by the first
    cold pass: one endpoint loads half the models, one at a time."""
    per_load_s = cold_pass["wall_s"] / max(1, cold_pass["models"] // 2)
    estimate_s = len(COLD_CONCURRENCIES) * 15 + 1.5 * COLD_MODELS * per_load_s
    return time.monotonic() + estimate_s < deadline


def run(models: int, budget: str | None, time_budget_s: float, work: Path) -> dict[str, Any]:
    started = time.monotonic()
    deadline = started + time_budget_s
    environ = stack_environ(work, budget)
    check_memory_is_safe(models, load_settings(environ=environ).memory.budget_bytes)
    customers = -(-models // MODELS_PER_CUSTOMER)
    with AvailableMemoryWatch() as watch:
        summaries = build_packages(work, customers, load_settings(environ=environ))
        build_s = time.monotonic() - started
        first = on_first_stack(environ, summaries, work, deadline)
        passes = first["passes"]
        if restarts_fit(passes["cold"], deadline):
            passes["cold_after_restart"] = cold_after_restart(environ, work, first["targets"])
    settings = first["settings"]
    return {
        **machine_and_versions(),
        "inputs": {
            "models": len(first["targets"]),
            "customers": customers,
            "budget_bytes": settings.memory.budget_bytes,
            "default_concurrency": settings.sagemaker.warmup_concurrency,
            "cold_threshold_ms": settings.sagemaker.cold_threshold_ms,
            "invoke_retries": settings.sagemaker.invoke_retries,
            "model_load_wait_s": settings.mme_local.model_load_wait_s,
            "concurrencies": CONCURRENCIES,
            "warm_repeats": WARM_REPEATS,
            "cold_models": COLD_MODELS,
            "cold_concurrencies": COLD_CONCURRENCIES,
            "time_budget_s": time_budget_s,
        },
        "summary": summary(first["targets"], passes, settings, first["fits"]),
        "memory_after_cold_pass": first["memory"],
        "lowest_available_memory_bytes": watch.lowest,
        "phases_s": {
            "build": round(build_s, 1),
            "register": round(first["register_s"], 1),
            "total": round(time.monotonic() - started, 1),
        },
        "passes": passes,
    }


SCALING_KEYS = ("models", "concurrency", "state", "wall_s", "p50_ms", "p95_ms", "failures")


def summary(
    targets: list[RegisteredTarget], passes: dict[str, Any], settings: Settings, fits: bool
) -> dict[str, Any]:
    cold, warm_all_pass = passes["cold"], passes["warm_all"]
    rows = [
        cold,
        *passes["warm_subsets"],
        *([warm_all_pass] if warm_all_pass else []),
        *passes.get("cold_after_restart", []),
    ]
    return {
        "models": len(targets),
        "endpoints": len({t.endpoint for t in targets}),
        "endpoint_names": sorted({t.endpoint for t in targets}),
        "cold_wall_s": cold["wall_s"],
        "cold_concurrency": settings.sagemaker.warmup_concurrency,
        "warm_wall_s": warm_all_pass["wall_s"] if warm_all_pass else None,
        "all_models_fit": fits,
        "warm_all_cold_models": warm_all_pass["cold"] if warm_all_pass else None,
        "cold_pass_evictions": cold["evictions"],
        "failures": sum(row.get("failures", 0) for row in rows),
        "scaling": [{key: row.get(key) for key in SCALING_KEYS} for row in rows],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=100, help="rounded up to whole customers")
    parser.add_argument("--budget", default="4GiB", help="model-cache resident memory per endpoint")
    parser.add_argument(
        "--time-budget",
        type=float,
        default=420.0,
        help="seconds from the start after which the optional passes are left out",
    )
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results")
    args = parser.parse_args()
    logging.getLogger("urllib3.connectionpool").addFilter(DISCARDED)
    with tempfile.TemporaryDirectory(prefix="mme-warmup-") as work:
        results = run(args.models, args.budget, args.time_budget, Path(work))
    print_table(table(results))
    print(f"results: {write_results('warmup_scale', results, args.out)}")
    sys.exit(1 if results["summary"]["failures"] else 0)


if __name__ == "__main__":
    main()
