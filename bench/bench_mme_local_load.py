"""Load test of mme_local: six models behind a memory budget that holds three (loopback only).

    .venv/bin/python bench/bench_mme_local_load.py [--seconds 30] [--clients 20] [--out DIR]

Each model is a small Python-backend model holding `--ballast-mb` of memory, so the budget is
what decides how many stay loaded. Calibration loads one model into a bare Triton to measure
Triton alone and one model, by proportional share (PSS, what the budget counts); the budget is
then Triton + 3.5 models. `--clients` threads call InvokeEndpoint through boto3 (standard
retries, as production clients) for `--seconds`, each picking a model with Zipf-like weights
1/rank. A sampler reads the PSS and the RSS of Triton and its stub processes every 50 ms. Pass:
zero failed requests, p95 at most 4 s and PSS never above budget plus one model.

Where the time goes: each load's phases (slot, fetch, memory, Triton's load) from the
endpoint's load timelines, and the mean share of each in the requests slower than the p95 goal
(`mme_local_load_timeline.py`). A load alone is measured twice in the same run: the calibration
load on a bare Triton, and a seventh model loaded once on the endpoint after the clients stop.
The load average is noted at the start and the end. Prints a table; writes JSON under
bench/results/.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from bench_report import machine_and_versions, print_table, write_results
from mme_local_load_timeline import (
    Request,
    load_phases,
    request_samples,
    slow_request_breakdown,
    warm_latency_ms,
)

from mme_factory.protocol import endpoint_path
from mme_factory.settings import load_settings
from mme_factory.triton import TritonRuntime, TritonServer
from mme_factory.triton.process_memory import process_tree, process_tree_memory
from test_support.mme_local_harness import ServiceProcess, clients, create_endpoint, pooled_config
from test_support.mme_local_models import infer_body, model_files, model_tarball, write_model

REPO = Path(__file__).resolve().parent.parent

ENDPOINT = "dev-mme-load"
MODELS = 6
FITS = 3
P95_GOAL_MS = 4000.0


def calibrate(work: Path, ballast_mb: int) -> tuple[int, int, float]:
    """PSS bytes of Triton alone and added by one model, measured on a bare server, and the
    seconds that model took to load there."""
    directory = work / "calibration" / "model"
    for path, data in model_files("calibration", ballast_mb=ballast_mb).items():
        (directory / path).parent.mkdir(parents=True, exist_ok=True)
        (directory / path).write_bytes(data)
    runtime = TritonRuntime.from_settings(load_settings(environ={}))
    with TritonServer(runtime, work / "calibration-server", work / "calibration.log") as server:
        assert server.pid is not None
        time.sleep(0.5)
        alone = process_tree_memory(server.pid, proportional=True)
        started = time.monotonic()
        server.load("calibration", directory)
        load_s = time.monotonic() - started
        time.sleep(0.5)
        return alone, process_tree_memory(server.pid, proportional=True) - alone, load_s


def run(seconds: float, client_count: int, ballast_mb: int, work: Path) -> dict:
    alone, per_model, bare_load_s = calibrate(work, ballast_mb)
    budget = alone + int(FITS * per_model + per_model // 2)
    store = work / "store"
    targets = [f"load/model-{index}/v1.tar.gz" for index in range(MODELS)]
    idle_target = f"load/model-{MODELS}/v1.tar.gz"  # loaded once after the clients stop
    for index, target in enumerate([*targets, idle_target]):
        data = model_tarball(f"load_model_{index}_v1", ballast_mb=ballast_mb, sleep_s=0.002)
        write_model(store, f"mme/{ENDPOINT}/{target}", data)
    environ = {
        "MME_FACTORY_STATE_DIR": str(work / "state"),
        "MME_FACTORY_STORE": str(store),
        "MME_FACTORY_MEMORY__BUDGET": str(budget),
    }
    weights = [1.0 / rank for rank in range(1, MODELS + 1)]
    with ServiceProcess(environ, work / "service.log") as service:
        sagemaker, runtime = clients(service.url, pooled_config())
        create_endpoint(sagemaker, ENDPOINT, f"s3://bucket/mme/{ENDPOINT}/")
        triton_pid = service.get_json(endpoint_path(ENDPOINT))["triton_pid"]
        peak = {"pss": 0, "rss": 0}
        read_s: list[float] = []
        stop = threading.Event()

        def sample() -> None:
            while not stop.is_set():
                started = time.perf_counter()
                tree = process_tree(triton_pid)
                read_s.append(time.perf_counter() - started)
                peak["pss"] = max(peak["pss"], sum(found.pss_bytes for found in tree))
                peak["rss"] = max(peak["rss"], sum(found.rss_bytes for found in tree))
                time.sleep(0.05)

        def invoke(target: str) -> None:
            answer = runtime.invoke_endpoint(
                EndpointName=ENDPOINT, TargetModel=target, Body=infer_body([1.0, 2.0])
            )
            answer["Body"].read()

        def client(seed: int) -> tuple[list[Request], list[str], dict[str, int]]:
            chooser, requests, failures = random.Random(seed), [], []
            picks = dict.fromkeys(targets, 0)
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline:
                target = chooser.choices(targets, weights)[0]
                picks[target] += 1
                started = time.monotonic()
                try:
                    invoke(target)
                    requests.append(Request(target, started, time.monotonic(), True))
                except Exception as error:
                    failures.append(f"{target}: {error}")
            return requests, failures, picks

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        load_average_at_start = os.getloadavg()
        started = time.monotonic()
        with ThreadPoolExecutor(client_count) as pool:
            outcomes = list(pool.map(client, range(client_count)))
        elapsed = time.monotonic() - started
        load_average_at_end = os.getloadavg()
        metrics = service.metrics()
        state = service.get_json(endpoint_path(ENDPOINT))
        # One cold load on the endpoint once it is idle: the load's own duration, here and now.
        time.sleep(3.0)
        idle_started = time.monotonic()
        invoke(idle_target)
        idle_request_s = time.monotonic() - idle_started
        idle_loads = service.get_json(endpoint_path(ENDPOINT))["recent_loads"]
        stop.set()
        sampler.join()
    idle_load = next(load for load in idle_loads if load["target_model"] == idle_target)
    timed = [request for outcome in outcomes for request in outcome[0]]
    latencies = np.array([request.latency_s for request in timed]) * 1000
    failures = [failure for outcome in outcomes for failure in outcome[1]]
    picks = {t: sum(outcome[2][t] for outcome in outcomes) for t in targets}
    label = f'{{endpoint="{ENDPOINT}"}}'
    p95 = float(np.percentile(latencies, 95))
    hits, lookups = metrics[f"ModelCacheHit_sum{label}"], metrics[f"ModelCacheHit_count{label}"]
    loads = sum(v for k, v in metrics.items() if k.startswith("ModelLoadingTime_count"))
    load_us = sum(v for k, v in metrics.items() if k.startswith("ModelLoadingTime_sum"))
    unloads = sum(v for k, v in metrics.items() if k.startswith("ModelUnloadingTime_count"))
    unload_us = sum(v for k, v in metrics.items() if k.startswith("ModelUnloadingTime_sum"))
    loads_seen = state["recent_loads"]
    peak_pss = max(peak["pss"], state["peak_memory_bytes"])
    peak_rss = max(peak["rss"], state["peak_rss_bytes"])
    return {
        **machine_and_versions(),
        "inputs": {
            "seconds": seconds,
            "clients": client_count,
            "models": MODELS,
            "budget_fits": FITS,
            "ballast_mb": ballast_mb,
            "zipf_weights": weights,
            "model_execute_sleep_s": 0.002,
            "load_concurrency": state["load_concurrency"],
        },
        "load_average_at_start": load_average_at_start,
        "load_average_at_end": load_average_at_end,
        "triton_alone_bytes": alone,
        "per_model_bytes": per_model,
        "budget_bytes": budget,
        "requests": len(latencies) + len(failures),
        "failed_requests": len(failures),
        "failures_sample": failures[:10],
        "throughput_rps": len(latencies) / elapsed,
        "latency_ms": {
            "p50": float(np.percentile(latencies, 50)),
            "p95": p95,
            "p99": float(np.percentile(latencies, 99)),
            "max": float(latencies.max()),
        },
        "picks": picks,
        "cache_hit_ratio": hits / lookups if lookups else 0.0,
        "loads": loads,
        "mean_load_s": load_us / 1e6 / loads if loads else 0.0,
        "mean_unload_s": unload_us / 1e6 / unloads if unloads else 0.0,
        "load_phases_s": load_phases(loads_seen),
        "warm_latency_ms": warm_latency_ms(timed, loads_seen),
        "slow_requests": slow_request_breakdown(timed, loads_seen, P95_GOAL_MS / 1000),
        "slowest_requests": request_samples(timed, loads_seen, P95_GOAL_MS / 1000),
        "load_timelines": loads_seen,
        "load_alone": {
            "bare_triton_load_s": bare_load_s,
            "idle_endpoint_triton_load_s": idle_load["loaded"] - idle_load["admitted"],
            "idle_endpoint_load_total_s": idle_load["done"] - idle_load["asked"],
            "idle_endpoint_request_s": idle_request_s,
        },
        "evictions": metrics.get(f"ModelEvictions_total{label}", 0.0),
        "peak_loads_in_flight": state["peak_loads_in_flight"],
        "peak_memory_bytes": peak_pss,
        "peak_pss_bytes": peak_pss,
        "peak_rss_bytes": peak_rss,
        "memory_limit_bytes": budget + per_model,
        "pss_read_ms_median": 1000 * float(np.median(read_s)) if read_s else 0.0,
        "p95_goal_ms": P95_GOAL_MS,
        "passed": not failures and peak_pss <= budget + per_model and p95 <= P95_GOAL_MS,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--ballast-mb", type=int, default=64)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mme-load-") as work:
        results = run(args.seconds, args.clients, args.ballast_mb, Path(work))
    mb = 1024 * 1024
    print_table(
        [
            ("requests / failed", f"{results['requests']} / {results['failed_requests']}"),
            ("throughput", f"{results['throughput_rps']:.0f} requests/s"),
            (
                "latency p50 / p95 / p99 / max",
                " / ".join(f"{results['latency_ms'][k]:.1f}" for k in ("p50", "p95", "p99", "max"))
                + " ms",
            ),
            ("cache-hit ratio", f"{results['cache_hit_ratio']:.3f}"),
            (
                "loads / evictions / mean load",
                f"{results['loads']:.0f} / {results['evictions']:.0f} / "
                f"{results['mean_load_s']:.2f} s",
            ),
            (
                "Triton alone / per model",
                f"{results['triton_alone_bytes'] / mb:.0f} MiB / "
                f"{results['per_model_bytes'] / mb:.0f} MiB",
            ),
            ("peak loads in parallel", f"{results['peak_loads_in_flight']}"),
            (
                "warm requests (no load of theirs): n, p50 / p95 / p99",
                f"{results['warm_latency_ms']['requests']}: "
                + " / ".join(
                    f"{results['warm_latency_ms'].get(k, 0.0):.1f}" for k in ("p50", "p95", "p99")
                )
                + " ms",
            ),
            (
                "load alone: bare Triton / idle endpoint",
                f"{results['load_alone']['bare_triton_load_s']:.2f} s / "
                f"{results['load_alone']['idle_endpoint_triton_load_s']:.2f} s",
            ),
            *(
                (f"load phase {phase}: median / p95", f"{v['median_s']:.2f} / {v['p95_s']:.2f} s")
                for phase, v in results["load_phases_s"].items()
            ),
            (
                f"requests > {P95_GOAL_MS / 1000:.0f} s: count, mean s in phase",
                f"{results['slow_requests']['slow_requests']}: "
                + ", ".join(
                    f"{phase} {value:.2f}"
                    for phase, value in results["slow_requests"]["mean_s_per_phase"].items()
                ),
            ),
            (
                "load average at start / end (1 min)",
                f"{results['load_average_at_start'][0]:.1f} / "
                f"{results['load_average_at_end'][0]:.1f}",
            ),
            (
                "peak PSS / RSS / budget / budget + 1 model",
                f"{results['peak_pss_bytes'] / mb:.0f} / {results['peak_rss_bytes'] / mb:.0f} / "
                f"{results['budget_bytes'] / mb:.0f} / "
                f"{results['memory_limit_bytes'] / mb:.0f} MiB",
            ),
            ("PSS read (Triton + stubs), median", f"{results['pss_read_ms_median']:.1f} ms"),
            ("passed", str(results["passed"])),
        ]
    )
    print(f"results: {write_results('mme_local_load', results, args.out)}")
    sys.exit(0 if results["passed"] else 1)


if __name__ == "__main__":
    main()
