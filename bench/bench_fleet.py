"""Benchmark: fleet throughput of `onboard-fleet` with 1 worker and with 2, and a skip-all re-run.

    .venv/bin/python bench/bench_fleet.py [--customers 4] [--out DIR] [--timeout 1800]

Four small customers are generated from the sample customer's templates
(examples/generate_acme.py), each with its own seed and a different four of the sixteen intents
left out, cut to 24 texts per intent and 300 replies; every kind their data supports is
trained from the tiny base models the end-to-end tests use (a 2-layer BERT of width 32 for the
embedding and the classifier, a 1-layer compact decoder), so that 8 onboardings fit in minutes
on a small machine. Everything is real: a Prefect server (the test harness), a process work
pool with the `onboard-customer` deployment, `prefect worker` processes, mme_local with Triton.

Phase 1 onboards the customers with one worker; phase 2 onboards the same data under other ids
with two workers (both are first onboardings); each worker runs one flow run at a time. The
fleet's concurrency is the number of customers, so the pool's workers are what limits it.
Phase 3 runs the fleet again over every customer: all are skipped, and its cost is the check.
Prints a table; writes JSON under bench/results/.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pandas as pd
from bench_pipeline import environment
from bench_report import machine_and_versions, print_table, write_results
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterParentFlowRunId
from prefect.settings import PREFECT_API_URL
from prefect.testing.utilities import prefect_test_harness

from flows.onboard_fleet import onboard_fleet
from tasks.fleet import FleetCustomer
from test_support.process_worker import ProcessWorker, create_process_pool, deploy_onboarding
from test_support.tiny_stack import tiny_stack

REPO = Path(__file__).resolve().parent.parent
# The sample's generator is a script of the examples, not part of the installed project.
_spec = importlib.util.spec_from_file_location("generate_acme", REPO / "examples/generate_acme.py")
assert _spec is not None and _spec.loader is not None
generate_acme = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(generate_acme)
SEED = generate_acme.SEED

POOL = "bench-fleet"
TEXTS_PER_INTENT = 24
REPLIES = 300
INTENTS_LEFT_OUT = 4
BENCH_SETTINGS = {
    "MME_FACTORY_FLEET__POLL_INTERVAL_S": "2",
    # The tiny encoder starts from random weights: at the tests' 2 epochs its classifier can
    # lose to the base model on these customers, and the gate then serves the base instead.
    "MME_FACTORY_TRAINING__CLASSIFIER__EPOCHS": "6",
    "MME_FACTORY_TRAINING__CLASSIFIER__LEARNING_RATE": "0.001",
}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=4)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results")
    parser.add_argument("--timeout", type=float, default=1800, help="limit per phase, seconds")
    return parser.parse_args()


def small_customer(directory: Path, index: int) -> dict[str, int]:
    """The sample generated with its own seed, four intents left out, cut small."""
    generate_acme.generate(directory, SEED + index)
    intents = pd.read_csv(directory / "intents.csv", dtype=str)
    names = sorted(intents["intent"].unique())
    left_out = {names[(index * INTENTS_LEFT_OUT + i) % len(names)] for i in range(4)}
    kept = intents[~intents["intent"].isin(left_out)].groupby("intent").head(TEXTS_PER_INTENT)
    kept.to_csv(directory / "intents.csv", index=False)
    replies = (directory / "replies.jsonl").read_text(encoding="utf-8").splitlines(True)
    (directory / "replies.jsonl").write_text("".join(replies[:REPLIES]), encoding="utf-8")
    return {"intents": int(kept["intent"].nunique()), "texts": len(kept), "replies": REPLIES}


def child_runs(parent_id: Any) -> list[dict[str, Any]]:
    """Each onboarding run the fleet run started: when it ran, for how long, how it ended."""
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(
                parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[parent_id])
            )
        )
    return [
        {
            "name": run.name,
            "state": run.state_type.value if run.state_type else None,
            "run_s": round(run.total_run_time.total_seconds(), 1),
            "queued_s": round((run.start_time - run.expected_start_time).total_seconds(), 1)
            if run.start_time and run.expected_start_time
            else None,
        }
        for run in sorted(runs, key=lambda r: r.name)
    ]


def timed_fleet(timeout_s: float, **parameters: Any) -> dict[str, Any]:
    started = time.monotonic()
    state = onboard_fleet.with_options(timeout_seconds=timeout_s)(**parameters, return_state=True)
    wall_s = time.monotonic() - started
    outcomes = state.result()  # raises when a customer failed: then there is no figure
    return {
        "wall_s": round(wall_s, 2),
        "outcomes": [f"{o['customer']}: {o['outcome']} ({o['reason']})" for o in outcomes],
        "runs": child_runs(state.state_details.flow_run_id),
    }


def phase(
    stack: ExitStack,
    workers: int,
    customers: list[FleetCustomer],
    environ: dict[str, str],
    logs: Path,
    started: list[ProcessWorker],
    timeout_s: float,
) -> dict[str, Any]:
    """Onboard `customers` with `workers` workers online (starting the ones missing)."""
    while len(started) < workers:
        worker = ProcessWorker(POOL, environ, logs / f"worker-{len(started) + 1}.log", limit=1)
        worker.start()
        stack.callback(worker.stop)
        started.append(worker)
    result = timed_fleet(timeout_s, customers=customers, concurrency=len(customers))
    result["workers"] = workers
    result["customers_per_hour"] = round(len(customers) * 3600 / result["wall_s"], 2)
    return result


def main() -> None:
    args = parse_args()
    results: dict[str, Any] = {
        "benchmark": "fleet",
        **machine_and_versions(),
        "inputs": {
            "customers": args.customers,
            "base_models": "tiny (test_support.tiny_base_models): 2-layer BERT width 32, "
            "1-layer compact decoder",
            "data": f"examples/generate_acme.py, seeds {SEED}+i, {INTENTS_LEFT_OUT} of 16 "
            f"intents left out, {TEXTS_PER_INTENT} texts per intent, {REPLIES} replies",
            "kinds": "every kind the data supports (embedding, classifier, autocomplete)",
            "settings": BENCH_SETTINGS,
            "worker_limit": 1,
        },
    }
    with tempfile.TemporaryDirectory(prefix="bench-fleet-") as work, ExitStack() as stack:
        root = Path(work)
        environ, service = tiny_stack(root, "benchfleet", BENCH_SETTINGS)
        data = {}
        for index in range(args.customers):
            data[f"c{index + 1}"] = small_customer(root / "data" / f"c{index + 1}", index)
        results["inputs"]["customer_data"] = data
        service.start(timeout_s=60)
        stack.callback(service.stop)
        stack.enter_context(environment(environ))
        stack.enter_context(prefect_test_harness(server_startup_timeout=120))
        create_process_pool(POOL)
        deploy_onboarding(POOL)
        worker_environ = {**environ, "PREFECT_API_URL": str(PREFECT_API_URL.value())}
        workers: list[ProcessWorker] = []

        def customers(suffix: str) -> list[FleetCustomer]:
            return [
                FleetCustomer(customer_id=f"{name}-{suffix}", data_uri=str(root / "data" / name))
                for name in data
            ]

        logs = root / "logs"
        logs.mkdir()
        one = phase(stack, 1, customers("one"), worker_environ, logs, workers, args.timeout)
        two = phase(stack, 2, customers("two"), worker_environ, logs, workers, args.timeout)
        everyone = customers("one") + customers("two")
        skip = timed_fleet(args.timeout, customers=everyone)
        skip["customers"] = len(everyone)
        skip["all_skipped"] = all(": skipped (" in o for o in skip["outcomes"])
    results |= {
        "one_worker": one,
        "two_workers": two,
        "speedup_two_over_one": round(two["customers_per_hour"] / one["customers_per_hour"], 2),
        "skip_rerun": skip,
    }
    load_at_start = results["machine"]["load_average_at_start"]
    print_table(
        [
            ("customers per phase", f"{args.customers} (tiny base models, small data)"),
            ("1 worker", f"{one['wall_s']:.0f} s, {one['customers_per_hour']:.1f} customers/h"),
            ("2 workers", f"{two['wall_s']:.0f} s, {two['customers_per_hour']:.1f} customers/h"),
            ("2 workers / 1 worker", f"{results['speedup_two_over_one']:.2f}x"),
            (
                f"re-run, {skip['customers']} customers",
                f"{skip['wall_s']:.1f} s, all skipped: {skip['all_skipped']}",
            ),
            ("load average at start", " ".join(f"{x:.1f}" for x in load_at_start)),
            ("load average at end", " ".join(f"{x:.1f}" for x in os.getloadavg())),
        ]
    )
    print(f"wrote {write_results('fleet', results, args.out)}")


if __name__ == "__main__":
    main()
