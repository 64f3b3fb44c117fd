"""Benchmark: the sample customer's training stage, this tree against an earlier revision.

    .venv/bin/python bench/bench_training_speed.py [--baseline e73c288] [--rounds 1]

Runs `mme-factory train --customer acme` (validate, fine-tune, evaluate, gate and export all
three kinds with the default settings) once per round for the earlier revision, checked out in
a temporary git worktree, and for this tree, alternating, in one run of this script on the same
machine, so that the ratio holds while the machine's speed does not. Prints per-kind train and
export seconds and held-out metrics for both; writes JSON under bench/results/.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench_report import machine_and_versions, write_results

REPO = Path(__file__).resolve().parent.parent
ACME = REPO / "examples" / "customers" / "acme"
# The last revision before batches by length, the frozen token table and the training budget.
DEFAULT_BASELINE = "e73c288"
RUN_TIMEOUT_S = 3600
HEADLINE = {
    "embedding": ("recall_at_1", "mrr"),
    "classifier": ("accuracy", "macro_f1"),
    "autocomplete": ("next_word_accuracy", "perplexity_per_word"),
}
TRAIN_COMMAND = (
    "import sys; from cli.main import main; "
    "sys.exit(main(['train', '--customer', 'acme', '--data', sys.argv[1], '--json']))"
)


def worktree(revision: str, scratch: Path) -> Path:
    path = scratch / f"baseline-{revision}"
    subprocess.run(
        ["git", "-C", str(REPO), "worktree", "add", "--detach", str(path), revision],
        check=True,
        capture_output=True,
    )
    return path


def train_once(source: Path, state: Path) -> dict[str, Any]:
    environ = {
        **os.environ,
        "PYTHONPATH": str(source),
        "MME_FACTORY_STATE_DIR": str(state),
        "HF_HUB_OFFLINE": "1",
    }
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", TRAIN_COMMAND, str(ACME)],
        cwd=source,
        env=environ,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
        check=False,
    )
    wall = time.monotonic() - started
    if done.returncode != 0:
        raise SystemExit(f"training in {source} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    record = json.loads(done.stdout[done.stdout.index("{") :])
    kinds = {}
    for kind, outcome in record["kinds"].items():
        metrics = outcome["metrics"]["fine_tuned"]
        kinds[kind] = {
            "train_s": outcome["timings"]["train_s"],
            "export_s": outcome["timings"].get("export_s", 0.0),
            "total_s": outcome["timings"]["total_s"],
            "status": outcome["status"],
            **{name: metrics[name] for name in HEADLINE[kind]},
        }
    return {"wall_s": wall, "training_s": record.get("total_s"), "kinds": kinds}


def print_columns(header: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))


def mean(values: list[float]) -> float:
    return sum(values) / len(values)


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    kinds: dict[str, dict[str, float]] = {}
    for kind in runs[0]["kinds"]:
        rows = [run["kinds"][kind] for run in runs]
        kinds[kind] = {
            key: mean([row[key] for row in rows])
            for key in rows[0]
            if isinstance(rows[0][key], float | int)
        }
    return {"training_s": mean([run["training_s"] for run in runs]), "kinds": kinds}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", default=DEFAULT_BASELINE, help="git revision to compare")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results")
    args = parser.parse_args()
    runs: dict[str, list[dict[str, Any]]] = {"baseline": [], "current": []}
    with tempfile.TemporaryDirectory(prefix="training-speed-") as scratch_name:
        scratch = Path(scratch_name)
        sources = {"baseline": worktree(args.baseline, scratch), "current": REPO}
        try:
            for round_number in range(args.rounds):
                for variant, source in sources.items():
                    state = scratch / f"state-{variant}-{round_number}"
                    run = train_once(source, state)
                    runs[variant].append(run)
                    print(
                        f"round {round_number + 1} {variant}: {run['training_s']:.1f} s", flush=True
                    )
        finally:
            subprocess.run(
                ["git", "-C", str(REPO), "worktree", "remove", "--force", str(sources["baseline"])],
                check=False,
                capture_output=True,
            )
    summary = {variant: summarise(variant_runs) for variant, variant_runs in runs.items()}
    before, after = summary["baseline"], summary["current"]
    rows = []
    for kind, now in after["kinds"].items():
        then = before["kinds"][kind]
        shown = ", ".join(f"{name} {then[name]:.3f} -> {now[name]:.3f}" for name in HEADLINE[kind])
        rows.append(
            [
                kind,
                f"{then['train_s']:.1f}",
                f"{now['train_s']:.1f}",
                f"{then['export_s']:.1f}",
                f"{now['export_s']:.1f}",
                shown,
            ]
        )
    rows.append(
        [
            "all kinds",
            f"{before['training_s']:.1f}",
            f"{after['training_s']:.1f}",
            "",
            "",
            f"{after['training_s'] / before['training_s']:.2f}x the time",
        ]
    )
    print(
        f"\nsample customer training stage, {args.baseline} -> this tree ({args.rounds} round(s))"
    )
    print_columns(
        [
            "kind",
            "train s before",
            "train s now",
            "export s before",
            "export s now",
            "held-out metrics before -> now",
        ],
        rows,
    )
    report = {
        "benchmark": "training_speed",
        "baseline": args.baseline,
        "rounds": args.rounds,
        **machine_and_versions(),
        "runs": runs,
        "summary": summary,
        "ratio": after["training_s"] / before["training_s"],
    }
    print(f"\nwrote {write_results('training_speed', report, args.out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
