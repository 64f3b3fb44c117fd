"""The timed passes of `bench/bench_warmup_scale.py` and what the service says about them."""

from __future__ import annotations

import logging
import statistics
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

import numpy as np

from mme_factory.inference_client import InferenceClient
from mme_factory.manifest import RegisteredTarget
from mme_factory.model_kinds import describe
from mme_factory.protocol import endpoint_path
from mme_factory.settings import Settings
from mme_factory.triton.process_memory import process_tree_memory
from tasks.deployment.warmup.warmup_models import ModelState, Warmup, WarmupStatus, warm_targets
from test_support.mme_local_harness import ServiceProcess

CONCURRENCIES = (1, 4, 16)
WARM_REPEATS = 3


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


def metric_total(metrics: dict[str, float], name: str) -> int:
    """A metric summed over its labels; a counter's samples carry prometheus's `_total`."""
    names = {name, f"{name}_total"}
    return int(sum(value for key, value in metrics.items() if key.partition("{")[0] in names))


def timed_pass(
    service: ServiceProcess, concurrency: int, state: str, warm: Callable[[], Warmup]
) -> dict[str, Any]:
    """One warm-up pass and what it cost; over-capacity rows are counted, not timed."""
    before, discarded = service.metrics(), DISCARDED.count
    started = time.perf_counter()
    warmup = warm()
    wall_s = time.perf_counter() - started
    after = service.metrics()
    called = [r for r in warmup.results if r.state != ModelState.OVER_CAPACITY]
    latencies = np.array([r.latency_ms for r in called] or [0.0])
    failed = [r for r in called if r.status != WarmupStatus.OK]
    return {
        "models": len(called),
        "concurrency": concurrency,
        "state": state,
        "wall_s": round(wall_s, 3),
        "p50_ms": round(float(np.percentile(latencies, 50)), 1),
        "p95_ms": round(float(np.percentile(latencies, 95)), 1),
        "max_ms": round(float(latencies.max()), 1),
        "cold": sum(r.state == ModelState.COLD for r in called),
        "warm": sum(r.state == ModelState.WARM for r in called),
        "over_capacity": len(warmup.results) - len(called),
        "retried": sum(r.attempts > 1 for r in called),
        "failures": len(failed),
        "failures_sample": [f"{r.target_model}: {r.error}" for r in failed[:5]],
        "loads": metric_total(after, "ModelLoadingTime_count")
        - metric_total(before, "ModelLoadingTime_count"),
        "evictions": metric_total(after, "ModelEvictions") - metric_total(before, "ModelEvictions"),
        "connections_discarded": DISCARDED.count - discarded,
        "shortfalls": warmup.shortfalls,
        "instances_needed": warmup.instances_needed,
        "per_model": [asdict(r) for r in warmup.results],
    }


def warm_everything(
    settings: Settings, concurrency: int, targets: list[RegisteredTarget]
) -> Callable[[], Warmup]:
    """The warm-up as it was: every registered model, whether it fits or not."""
    return lambda: Warmup(warm_targets(settings, concurrency, targets))


def loaded_target_models(service: ServiceProcess, endpoints: list[str]) -> set[tuple[str, str]]:
    """(endpoint, TargetModel) of every model the endpoints hold loaded right now."""
    loaded = set()
    for endpoint in endpoints:
        for model in service.get_json(endpoint_path(endpoint))["models"]:
            loaded.add((endpoint, model["target_model"]))
    return loaded


def endpoint_memory(service: ServiceProcess, endpoints: list[str]) -> dict[str, dict[str, Any]]:
    """Per endpoint: models loaded, memory per model as the service measured it, and the
    Triton process tree's RSS and private (USS) memory, which shared libraries do not inflate."""
    memory = {}
    for endpoint in endpoints:
        state = service.get_json(endpoint_path(endpoint))
        per_model = [model["memory_bytes"] for model in state["models"]]
        memory[endpoint] = {
            "loaded": len(per_model),
            "memory_per_model_median_bytes": int(np.median(per_model)) if per_model else 0,
            "memory_bytes": state.get("memory_bytes"),
            "tree_rss_bytes": process_tree_memory(state["triton_pid"]),
            "tree_uss_bytes": process_tree_memory(state["triton_pid"], unique=True),
            "peak_memory_bytes": state["peak_memory_bytes"],
            "budget_bytes": state["budget_bytes"],
        }
    return memory


def customer_traffic(
    service: ServiceProcess,
    settings: Settings,
    targets: list[RegisteredTarget],
    endpoints: list[str],
    per_endpoint: int,
) -> list[RegisteredTarget]:
    """Customer calls (not marked as warm-up) to `per_endpoint` models per endpoint that are
    not loaded now: the ones the next warm-up must keep."""
    loaded = loaded_target_models(service, endpoints)
    by_endpoint: dict[str, list[RegisteredTarget]] = defaultdict(list)
    for target in targets:
        if (target.endpoint, target.target_model) not in loaded:
            by_endpoint[target.endpoint].append(target)
    chosen = [t for endpoint in endpoints for t in by_endpoint[endpoint][:per_endpoint]]
    client = InferenceClient.from_settings(settings)
    for target in chosen:
        inputs = describe(target.kind).warmup_inputs
        client.invoke_target(target.endpoint, target.target_model, target.kind, inputs)
    return chosen


def median_of_repeats(
    service: ServiceProcess, settings: Settings, targets: list[RegisteredTarget], concurrency: int
) -> dict[str, Any]:
    passes = [
        timed_pass(service, concurrency, "warm", warm_everything(settings, concurrency, targets))
        for _ in range(WARM_REPEATS)
    ]
    walls = [p["wall_s"] for p in passes]
    median = passes[walls.index(statistics.median_low(walls))]
    return {**median, "wall_s_repeats": walls}


def warm_subsets(
    service: ServiceProcess,
    settings: Settings,
    targets: list[RegisteredTarget],
    endpoints: list[str],
    divisors: tuple[int, ...],
) -> list[dict[str, Any]]:
    """Passes over the loaded models, for each size that fits, at each of CONCURRENCIES."""
    loaded = loaded_target_models(service, endpoints)
    warm = [t for t in targets if (t.endpoint, t.target_model) in loaded]
    sizes = sorted({len(targets) // divisor for divisor in divisors})
    passes = []
    for size in sizes:
        if size > len(warm):
            passes.append({"models": size, "state": f"skipped: {len(warm)} loaded"})
            continue
        for concurrency in CONCURRENCIES:
            passes.append(median_of_repeats(service, settings, warm[:size], concurrency))
    return passes
