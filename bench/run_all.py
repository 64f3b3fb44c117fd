"""Every benchmark in one run, then one table side by side with the published case's figures.

    .venv/bin/python bench/run_all.py [--out bench/results] [--skip NAME ...]

Runs, each as its own process with a time limit, writing JSON under `--out`:
pipeline (the sample customer through onboard-customer, then warmup; fine-tuning quality and
stage times), plan (`mme-factory plan` on the models the pipeline registered: footprint and
density), triton_embedding (cached-inference latency), mme_local_latency (cold start and the
service's overhead), mme_local_load (many clients, LRU under a memory budget) and
warmup_scale (warm-up of 100 TargetModels), training (BANKING77 and the autocomplete bases on
Taskmaster-4) and training_speed (the sample's training stage against an earlier revision).
Then prints the machine and the summary table and writes `summary-<time>.json`. Exits non-zero
if any benchmark failed.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench_report import machine_and_versions, print_table, write_results
from summary_rows import summary_rows

REPO = Path(__file__).resolve().parent.parent

WRAP_AT = 60
TRAINING_SECTIONS = ("--sections", "banking77,taskmaster4")
PLAN_INSTANCE_TYPES = ("ml.g4dn.xlarge", "ml.g4dn.2xlarge", "ml.c5.2xlarge")


@dataclass
class Step:
    name: str
    command: list[str]
    timeout_s: float
    environ: dict[str, str] = field(default_factory=dict)


@dataclass
class StepResult:
    name: str
    status: str  # "ok", "failed" or "timed out"
    seconds: float
    json_path: str | None


def steps(out: Path, store: Path) -> list[Step]:
    python = sys.executable
    plan_file = out / f"plan-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}.json"
    plan = [python, "-m", "cli.main", "plan", "--customers", "100,1000"]
    for instance in PLAN_INSTANCE_TYPES:
        plan += ["--instance-type", instance]
    return [
        Step(
            "pipeline",
            [python, "bench/bench_pipeline.py", "--keep-store", str(store), "--out", str(out)],
            600,
        ),
        Step("plan", [*plan, "--out", str(plan_file)], 300, {"MME_FACTORY_STORE": str(store)}),
        Step(
            "triton_embedding", [python, "bench/bench_triton_embedding.py", "--out", str(out)], 420
        ),
        Step(
            "mme_local_latency",
            [python, "bench/bench_mme_local_latency.py", "--repeats", "200", "--out", str(out)],
            420,
        ),
        Step("mme_local_load", [python, "bench/bench_mme_local_load.py", "--out", str(out)], 300),
        Step(
            "memory_accounting",
            [python, "bench/bench_memory_accounting.py", "--out", str(out)],
            300,
        ),
        Step("warmup_scale", [python, "bench/bench_warmup_scale.py", "--out", str(out)], 1200),
        Step("fleet", [python, "bench/bench_fleet.py", "--out", str(out)], 1500),
        Step(
            "training",
            [python, "bench/bench_training.py", *TRAINING_SECTIONS, "--out", str(out)],
            3600,
        ),
        Step(
            "training_speed",
            [python, "bench/bench_training_speed.py", "--rounds", "2", "--out", str(out)],
            2400,
        ),
    ]


def newest_json(out: Path, name: str, since: float) -> str | None:
    found = [p for p in out.glob(f"{name}-*.json") if p.stat().st_mtime >= since]
    return str(max(found, key=lambda p: p.stat().st_mtime)) if found else None


def run_step(step: Step, out: Path) -> StepResult:
    print(f"\n=== {step.name}: {' '.join(step.command[1:])}", flush=True)
    started = time.time()
    process = subprocess.Popen(step.command, cwd=REPO, env={**os.environ, **step.environ})
    try:
        status = "ok" if process.wait(timeout=step.timeout_s) == 0 else "failed"
    except subprocess.TimeoutExpired:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        status = "timed out"
    seconds = time.time() - started
    print(f"=== {step.name}: {status} in {seconds:.0f} s", flush=True)
    return StepResult(step.name, status, seconds, newest_json(out, step.name, started))


def print_summary_table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    """Columns padded to their widest cell; long cells wrap onto following lines."""
    wrapped = [[textwrap.wrap(cell, WRAP_AT) or [""] for cell in row] for row in [header, *rows]]
    widths = [max(len(line) for row in wrapped for line in row[i]) for i in range(len(header))]
    for index, row in enumerate(wrapped):
        for depth in range(max(len(cell) for cell in row)):
            cells = [cell[depth] if depth < len(cell) else "" for cell in row]
            print("  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip())
        if index == 0:
            print("  ".join("-" * width for width in widths))


def load_results(results: list[StepResult]) -> dict[str, dict[str, Any]]:
    loaded = {}
    for result in results:
        if result.json_path:
            loaded[result.name] = json.loads(Path(result.json_path).read_text(encoding="utf-8"))
    return loaded


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results")
    parser.add_argument("--skip", nargs="*", default=[], help="benchmark names to leave out")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    machine = machine_and_versions()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="mme-bench-") as work:
        chosen = [
            s for s in steps(args.out.resolve(), Path(work) / "store") if s.name not in args.skip
        ]
        results = [run_step(step, args.out.resolve()) for step in chosen]
    total_s = time.monotonic() - started
    rows = summary_rows(load_results(results))
    print(f"\nmachine: {machine['machine']}")
    print(f"all benchmarks: {total_s / 60:.1f} min\n")
    header = ("measure", "published case (T4, ml.g4dn)", "before", "here", "benchmark")
    print_summary_table(header, rows)
    print()
    print_table(
        [(r.name, f"{r.status}, {r.seconds:.0f} s, {r.json_path or 'no JSON'}") for r in results]
    )
    path = write_results(
        "summary",
        {
            **machine,
            "total_s": total_s,
            "steps": [r.__dict__ for r in results],
            "rows": [dict(zip(header, row, strict=True)) for row in rows],
        },
        args.out,
    )
    print(f"\nwrote {path}")
    return 0 if all(r.status == "ok" for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
