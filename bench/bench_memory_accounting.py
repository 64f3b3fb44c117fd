"""How well an endpoint's memory figure matches what the machine lost: PSS total vs RSS total.

    .venv/bin/python bench/bench_memory_accounting.py [--models 6] [--ballast-mb 64] [--out DIR]

Starts mme_local (real Triton) with one endpoint, reads the machine's available memory
(`MemAvailable`, averaged over `--samples` readings 0.2 s apart) with Triton started and nothing
loaded, then loads `--models` Python-backend models one by one and reads it again. The growth of
the machine's used memory is compared with the growth of the endpoint's PSS total and RSS total
(`/mme-local/endpoints/<name>`), and the time one PSS reading of Triton and its stubs takes is
measured beside one RSS reading. Goal: PSS within 10 % of the machine's growth. Other processes
on the machine move `MemAvailable` too: run it on a quiet machine, and read the spread.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import psutil
from bench_report import machine_and_versions, print_table, write_results

from mme_factory.protocol import endpoint_path
from mme_factory.triton.process_memory import process_tree, process_tree_memory
from test_support.mme_local_harness import ServiceProcess, clients, create_endpoint
from test_support.mme_local_models import infer_body, model_tarball, write_model

REPO = Path(__file__).resolve().parent.parent
ENDPOINT = "dev-mme-memory"
GOAL = 0.10


def available_bytes(samples: int) -> tuple[float, float]:
    """Mean and standard deviation of MemAvailable over `samples` readings."""
    readings = []
    for _ in range(samples):
        readings.append(psutil.virtual_memory().available)
        time.sleep(0.2)
    return statistics.mean(readings), statistics.pstdev(readings)


def endpoint_memory(service: ServiceProcess) -> tuple[int, int]:
    time.sleep(1.2)  # the endpoint reads memory every half second
    state = service.get_json(endpoint_path(ENDPOINT))
    return state["memory_bytes"], state["rss_bytes"]


def read_times_ms(pid: int, repeats: int = 20) -> tuple[float, float]:
    """Median ms of one PSS reading (with RSS and command lines) and of one RSS-only reading."""
    pss, rss = [], []
    for _ in range(repeats):
        started = time.perf_counter()
        process_tree(pid)
        pss.append(time.perf_counter() - started)
        started = time.perf_counter()
        process_tree_memory(pid)
        rss.append(time.perf_counter() - started)
    return 1000 * statistics.median(pss), 1000 * statistics.median(rss)


def run(models: int, ballast_mb: int, samples: int, work: Path) -> dict:
    store = work / "store"
    targets = [f"memory/model-{index}/v1.tar.gz" for index in range(models)]
    for index, target in enumerate(targets):
        data = model_tarball(f"memory_model_{index}_v1", ballast_mb=ballast_mb)
        write_model(store, f"mme/{ENDPOINT}/{target}", data)
    environ = {"MME_FACTORY_STATE_DIR": str(work / "state"), "MME_FACTORY_STORE": str(store)}
    with ServiceProcess(environ, work / "service.log") as service:
        sagemaker, runtime = clients(service.url)
        create_endpoint(sagemaker, ENDPOINT, f"s3://bucket/mme/{ENDPOINT}/")
        pss_before, rss_before = endpoint_memory(service)
        available_before, spread_before = available_bytes(samples)
        for target in targets:
            answer = runtime.invoke_endpoint(
                EndpointName=ENDPOINT, TargetModel=target, Body=infer_body([1.0])
            )
            answer["Body"].read()
        pss_after, rss_after = endpoint_memory(service)
        available_after, spread_after = available_bytes(samples)
        pid = service.get_json(endpoint_path(ENDPOINT))["triton_pid"]
        processes = len(process_tree(pid))
        pss_ms, rss_ms = read_times_ms(pid)
    machine = available_before - available_after
    pss, rss = pss_after - pss_before, rss_after - rss_before
    pss_error = abs(pss - machine) / machine if machine > 0 else float("inf")
    return {
        **machine_and_versions(),
        "inputs": {"models": models, "ballast_mb": ballast_mb, "samples": samples},
        "machine_growth_bytes": int(machine),
        "machine_spread_bytes": int(max(spread_before, spread_after)),
        "pss_growth_bytes": pss,
        "rss_growth_bytes": rss,
        "pss_error": pss_error,
        "rss_error": abs(rss - machine) / machine if machine > 0 else float("inf"),
        "rss_over_pss": rss / pss if pss else 0.0,
        "processes": processes,
        "pss_read_ms": pss_ms,
        "rss_read_ms": rss_ms,
        "passed": pss_error <= GOAL,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=6)
    parser.add_argument("--ballast-mb", type=int, default=64)
    parser.add_argument("--samples", type=int, default=10)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mme-memory-") as work:
        results = run(args.models, args.ballast_mb, args.samples, Path(work))
    mb = 1024 * 1024
    print_table(
        [
            ("models loaded", str(args.models)),
            (
                "machine growth (MemAvailable drop) / spread",
                f"{results['machine_growth_bytes'] / mb:.0f} / "
                f"{results['machine_spread_bytes'] / mb:.0f} MiB",
            ),
            (
                "PSS growth / error",
                f"{results['pss_growth_bytes'] / mb:.0f} MiB / {100 * results['pss_error']:.1f} %",
            ),
            (
                "RSS growth / error",
                f"{results['rss_growth_bytes'] / mb:.0f} MiB / {100 * results['rss_error']:.1f} %",
            ),
            (
                f"one reading of {results['processes']} processes: PSS / RSS",
                f"{results['pss_read_ms']:.1f} / {results['rss_read_ms']:.1f} ms",
            ),
            ("passed (PSS within 10 %)", str(results["passed"])),
        ]
    )
    print(f"results: {write_results('memory_accounting', results, args.out)}")
    sys.exit(0 if results["passed"] else 1)


if __name__ == "__main__":
    main()
