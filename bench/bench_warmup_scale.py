"""The hourly warm-up at scale: more TargetModels than three local endpoints hold (loopback only).

    .venv/bin/python bench/bench_warmup_scale.py [--models 40] [--budget 1.2GiB] [--out DIR]

Setup, as onboarding does it: `--models / 4` customers, each with its own four tiny randomly
initialised models (test_support/tiny_exports.py, one seed per customer: embedding query and
article encoders, classifier, autocomplete), packaged by `package_triton`, registered by
`register_mme` (endpoint created when missing, tarball uploaded under its prefix) and
promoted by `promote`. There is no smoke inference, so every model starts cold. A real
`python -m mme_local` process serves the three endpoints, each with its own Triton and a model
cache of `--budget` per endpoint.

Passes, in one run, each timed around the code the hourly flow runs or ran:
- warm everything, cold: the warm-up as it was (`warm_targets` over every registered model),
  the first call after registration, at `sagemaker.warmup_concurrency`; it loads every model
  and evicts as it goes;
- warm everything, again: the same a second time; where the models do not fit, each call
  misses again (a sequential pass in LRU order evicts what the next one needs), so it costs
  about what the cold pass did. It runs only within `--time-budget`;
- customer traffic: one call, not marked as warm-up, to TRAFFIC_PER_ENDPOINT models per endpoint
  that are not loaded then (so they load and count as served in the last hour);
- fits only, first and again: the warm-up as it is (`warm_models`): per endpoint, what fits the
  budget, the models with traffic first; the rest are "over capacity". The second pass should
  find every model it warms loaded: no cold call, seconds instead of minutes;
- warm: a quarter, half and all of the models still loaded, at each of CONCURRENCIES, the
  median of WARM_REPEATS passes (only sizes that are loaded).

The default, 40 TargetModels (20 embedding encoders, 10 classifiers, 10 autocomplete models)
under a model cache of 1.2 GiB per endpoint, holds about 15 of them; each tiny Python-backend
model is a stub process importing torch or tokenizers, so it costs about 200-330 MB and 3-5 s
to load, and an endpoint loads one model at a time. It takes about 4 minutes here. A budget
that could load more than the machine can spare is refused before anything starts.
Loads, evictions and memory come from the service's /metrics and /mme-local/endpoints/<name>.
Prints a table; writes JSON under bench/results/.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import psutil
from bench_report import machine_and_versions, print_table, write_results
from warmup_passes import (
    CONCURRENCIES,
    DISCARDED,
    WARM_REPEATS,
    customer_traffic,
    endpoint_memory,
    loaded_target_models,
    timed_pass,
    warm_everything,
    warm_subsets,
)
from warmup_scale_report import table

from mme_factory.manifest import registered_targets
from mme_factory.model_kinds import ModelKind
from mme_factory.naming import endpoint_name_for
from mme_factory.settings import Settings, load_settings
from mme_factory.store import open_store
from tasks.deployment.customer_lock import customer_lock
from tasks.deployment.publish.promote import manifest_entry, promote
from tasks.deployment.publish.register_mme import register_mme
from tasks.deployment.warmup.warmup_models import warm_models
from tasks.packaging.package_triton import PackageSummary, package_triton
from test_support.mme_local_harness import ServiceProcess
from test_support.tiny_exports import write_tiny_run

REPO = Path(__file__).resolve().parent.parent

ENV = "bench"
ENDPOINTS = [endpoint_name_for(str(kind), ENV) for kind in ModelKind]
MODELS_PER_CUSTOMER = 4  # embedding-query, embedding-article, classifier, autocomplete
SIZE_DIVISORS = (4, 2, 1)
TRAFFIC_PER_ENDPOINT = 2
GIB = 1024**3
# Measured here for the tiny models: resident memory per loaded TargetModel as the budget counts
# it (largest kind, the classifier), its private part, and what the rest of the machine keeps.
RSS_PER_MODEL = 330 * 1024**2
PRIVATE_PER_MODEL = 200 * 1024**2
MEMORY_RESERVE = 4 * GIB


def check_memory_is_safe(models: int, budget_bytes: int) -> None:
    """Refuse a budget under which the Tritons could take memory the machine cannot spare."""
    loadable = min(models, len(ENDPOINTS) * (budget_bytes // RSS_PER_MODEL + 1))
    needed, available = loadable * PRIVATE_PER_MODEL, psutil.virtual_memory().available
    if needed > available - MEMORY_RESERVE:
        raise SystemExit(
            f"{loadable} of {models} models can be loaded at once under a budget of "
            f"{budget_bytes / GIB:.1f} GiB per endpoint: about {needed / GIB:.1f} GiB, and "
            f"this machine has {available / GIB:.1f} GiB available. Pass a smaller --budget "
            "(1.2GiB holds about 5 models) or fewer --models."
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


def on_first_stack(
    environ: dict[str, str], summaries: list[PackageSummary], work: Path, deadline: float
) -> dict[str, Any]:
    """Register everything, warm it as before (twice if time allows), then as now (twice)."""
    with ServiceProcess(environ, work / "service.log") as service:
        settings = pipeline_settings(environ, service)
        started = time.monotonic()
        register_and_promote(summaries, settings)
        register_s = time.monotonic() - started
        targets = registered_targets(open_store(settings.store, settings))
        default = settings.sagemaker.warmup_concurrency
        everything = warm_everything(settings, default, targets)
        cold = timed_pass(service, default, "warm everything, cold", everything)
        memory = endpoint_memory(service, ENDPOINTS)
        fits = len(loaded_target_models(service, ENDPOINTS)) == len(targets)
        again = None
        if fits or time.monotonic() + cold["wall_s"] < deadline:
            again = timed_pass(service, default, "warm everything, again", everything)
        busy = customer_traffic(service, settings, targets, ENDPOINTS, TRAFFIC_PER_ENDPOINT)
        fitting = [
            timed_pass(service, default, state, lambda: warm_models(settings, default))
            for state in ("fits only, first", "fits only, again")
        ]
        loaded = loaded_target_models(service, ENDPOINTS)
        subsets = warm_subsets(service, settings, targets, ENDPOINTS, SIZE_DIVISORS)
    return {
        "settings": settings,
        "targets": targets,
        "register_s": register_s,
        "fits": fits,
        "memory": memory,
        "busy": busy,
        "busy_loaded_after": sum((t.endpoint, t.target_model) in loaded for t in busy),
        "passes": {
            "cold": cold,
            "warm_all": again,
            "fits_only": fitting,
            "warm_subsets": subsets,
        },
    }


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
            "traffic_per_endpoint": TRAFFIC_PER_ENDPOINT,
            "concurrencies": CONCURRENCIES,
            "warm_repeats": WARM_REPEATS,
            "time_budget_s": time_budget_s,
        },
        "summary": summary(first, settings),
        "memory_after_cold_pass": first["memory"],
        "lowest_available_memory_bytes": watch.lowest,
        "phases_s": {
            "build": round(build_s, 1),
            "register": round(first["register_s"], 1),
            "total": round(time.monotonic() - started, 1),
        },
        "passes": first["passes"],
    }


SCALING_KEYS = (
    "models",
    "concurrency",
    "state",
    "wall_s",
    "p50_ms",
    "p95_ms",
    "cold",
    "over_capacity",
    "failures",
)


def summary(first: dict[str, Any], settings: Settings) -> dict[str, Any]:
    targets, passes = first["targets"], first["passes"]
    cold, warm_all_pass = passes["cold"], passes["warm_all"]
    fits_first, fits_again = passes["fits_only"]
    current = [fits_first, fits_again, *passes["warm_subsets"]]
    rows = [cold, *([warm_all_pass] if warm_all_pass else []), *current]
    return {
        "models": len(targets),
        "endpoints": len({t.endpoint for t in targets}),
        "endpoint_names": sorted({t.endpoint for t in targets}),
        "cold_wall_s": cold["wall_s"],
        "cold_concurrency": settings.sagemaker.warmup_concurrency,
        "warm_wall_s": warm_all_pass["wall_s"] if warm_all_pass else None,
        "all_models_fit": first["fits"],
        "warm_all_cold_models": warm_all_pass["cold"] if warm_all_pass else None,
        "cold_pass_evictions": cold["evictions"],
        "fits_only": {
            "first_wall_s": fits_first["wall_s"],
            "again_wall_s": fits_again["wall_s"],
            "warmed": fits_again["models"],
            "over_capacity": fits_again["over_capacity"],
            # cold by latency (>= sagemaker.cold_threshold_ms); loads say whether any was loaded
            "again_cold": fits_again["cold"],
            "again_loads": fits_again["loads"],
            "again_evictions": fits_again["evictions"],
            "busy_models": len(first["busy"]),
            "busy_loaded_after": first["busy_loaded_after"],
            "instances_needed": fits_again["instances_needed"],
        },
        # The warm-up as it is; the warm-everything passes' failures are their own figure.
        "failures": sum(row.get("failures", 0) for row in current),
        "warm_everything_failures": cold["failures"] + (warm_all_pass or {}).get("failures", 0),
        "scaling": [{key: row.get(key) for key in SCALING_KEYS} for row in rows],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=40, help="rounded up to whole customers")
    parser.add_argument("--budget", default="1.2GiB", help="model-cache memory per endpoint")
    parser.add_argument(
        "--time-budget",
        type=float,
        default=420.0,
        help="seconds from the start after which the second warm-everything pass is left out",
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
