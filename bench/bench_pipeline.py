"""Benchmark: the `onboard-customer` flow on the sample customer, stage by stage, then `warmup`.

    .venv/bin/python bench/bench_pipeline.py [--keep-store DIR] [--out DIR] [--timeout 1800]

Runs the real flow with the default settings (all-MiniLM-L6-v2 for the embedding and the
classifier, the compact autocomplete decoder) on examples/customers/acme, against a private
mme_local process (real Triton) and a private local store in a temporary directory, under
Prefect's test harness; then the hourly `warmup` flow once.

Every figure comes from what the pipeline records: stage wall times from the Prefect flow run
and its task runs (start to end), train / export seconds, metrics and peak RSS from the run
directory's <kind>/metadata.json, cold and warm latency from the smoke results in the flow's
return value, per-model load timings and memory from mme_local. Prints a table; writes JSON
under bench/results/. With --keep-store DIR the store (tarballs under mme/<endpoint>/, customer
manifests under registry/) is left at DIR so that later benchmarks can serve those models.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from uuid import UUID

import prefect
from bench_report import machine_and_versions, print_table, write_results
from pipeline_report import model_label, table_rows
from prefect.client.orchestration import SyncPrefectClient, get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
from prefect.client.schemas.objects import TaskRun
from prefect.testing.utilities import prefect_test_harness

from flows.onboard_customer import onboard_customer
from flows.warmup import warmup
from mme_factory.model_kinds import describe
from mme_factory.protocol import endpoint_path
from mme_factory.triton.process_memory import process_tree_memory
from tasks.training.run_directory import RunDirectory
from test_support.mme_local_harness import ServiceProcess

REPO = Path(__file__).resolve().parent.parent

ACME = REPO / "examples" / "customers" / "acme"
TASK_RUNS_RECORDED_WITHIN_S = 30.0
PREFECT_START_TIMEOUT_S = 120
MME_LOCAL_START_TIMEOUT_S = 60.0
WARMUP_TIMEOUT_S = 600.0
STAGE_OF_TASK = {
    "validate_data": "validate",
    "start_training_run": "start_run",
    "assign_version": "assign_version",
    "package_triton": "package",
    "report_smoke_results": "report_smoke",
    "promote": "promote",
}
PER_MODEL_TASKS = {"register_mme": "register", "smoke_inference": "smoke"}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customer", default="acme")
    parser.add_argument("--data", type=Path, default=ACME, help="the customer's data directory")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results")
    parser.add_argument(
        "--keep-store",
        type=Path,
        metavar="DIR",
        help="use DIR (absent or empty) as the store and leave it there afterwards",
    )
    parser.add_argument("--timeout", type=float, default=1800, help="onboarding limit, seconds")
    args = parser.parse_args()
    if args.keep_store is not None:
        args.keep_store = args.keep_store.resolve()
        if args.keep_store.exists() and any(args.keep_store.iterdir()):
            parser.error(f"--keep-store {args.keep_store} is not empty")
    args.data = args.data.resolve()
    args.out = args.out.resolve()
    return args


@contextmanager
def environment(values: dict[str, str]) -> Iterator[None]:
    """Set environment variables for the flows (their settings come from it), then restore."""
    previous = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def stack_environ(work: Path, store: Path) -> dict[str, str]:
    """Settings shared by the flows and mme_local: private state and store, defaults otherwise."""
    return {
        "MME_FACTORY_STATE_DIR": str(work / "state"),
        "MME_FACTORY_STORE": str(store),
        "MME_FACTORY_SAGEMAKER__WAIT_DELAY_S": "1",
        # The default environments are relative to the working directory; pin them to this checkout.
        "MME_FACTORY_TRITON__ENV_DIR": str(REPO / ".triton-env"),
        "MME_FACTORY_TRITON__PYTHON_ENV_DIR": str(REPO / ".triton-python-env"),
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }


@contextmanager
def private_mme_local(environ: dict[str, str], log_path: Path) -> Iterator[ServiceProcess]:
    service = ServiceProcess(environ, log_path)
    try:
        service.start(timeout_s=MME_LOCAL_START_TIMEOUT_S)
        yield service
    finally:
        service.stop()


def run_flow(flow: Any, timeout_s: float, **parameters: Any) -> tuple[Any, UUID, float]:
    """Run a flow to completion (raising its error if it failed).

    Returns its result, its flow run id and the seconds the call took, which adds Prefect's
    flow-run set-up and teardown to the run's own start-to-end time.
    """
    started = time.monotonic()
    state = flow.with_options(timeout_seconds=timeout_s)(**parameters, return_state=True)
    call_s = time.monotonic() - started
    return state.result(), state.state_details.flow_run_id, call_s


def seconds_between(start: Any, end: Any) -> float:
    return (end - start).total_seconds()


def flow_run_seconds(client: SyncPrefectClient, flow_run_id: UUID) -> float:
    flow_run = client.read_flow_run(flow_run_id)
    return seconds_between(flow_run.start_time, flow_run.end_time)


def recorded_task_runs(client: SyncPrefectClient, flow_run_id: UUID) -> list[TaskRun]:
    """The flow run's task runs once the server has recorded all of them as finished.

    Task-run states reach the server as events, so the last ones may land a moment after the
    flow returns: wait until every run is final and two reads in a row agree.
    """
    only_this_run = FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))
    deadline = time.monotonic() + TASK_RUNS_RECORDED_WITHIN_S
    previous: list[TaskRun] = []
    while time.monotonic() < deadline:
        runs = client.read_task_runs(flow_run_filter=only_this_run, limit=200)
        finished = all(run.state is not None and run.state.is_final() for run in runs)
        if runs and finished and len(runs) == len(previous):
            return sorted(runs, key=lambda run: run.start_time)
        previous = runs if finished else []
        time.sleep(0.5)
    raise TimeoutError(f"task runs of flow run {flow_run_id} not all recorded within the limit")


def task_function(run: TaskRun) -> str:
    """The task's function name, less any `_task` suffix.

    Prefect's task key is `<function>-<source hash>`; the Prefect task wrapping a plain
    function `f` is named `f_task`, and both stand for the same stage here.
    """
    return run.task_key.rsplit("-", 1)[0].removesuffix("_task")


def stage_seconds(task_runs: list[TaskRun], onboarding: dict[str, Any]) -> dict[str, float]:
    """Wall seconds of each stage, in the order the flow ran them.

    Registration and smoke run one model at a time in the order of the flow's `models`, so
    their task runs, in start order, pair with those models.
    """
    labels = [model_label(model["target_model"]) for model in onboarding["models"]]
    per_model_seen = {name: 0 for name in PER_MODEL_TASKS}
    stages: dict[str, float] = {}
    for run in task_runs:
        function = task_function(run)
        if function == "train_model":
            name = "train " + run.name.removeprefix("train-")
        elif function in PER_MODEL_TASKS:
            name = f"{PER_MODEL_TASKS[function]} {labels[per_model_seen[function]]}"
            per_model_seen[function] += 1
        else:
            name = STAGE_OF_TASK.get(function, function)
        stages[name] = stages.get(name, 0.0) + seconds_between(run.start_time, run.end_time)
    return stages


def training_figures(run: RunDirectory, kinds: list[str]) -> dict[str, dict[str, Any]]:
    """Per kind: timings and the headline metrics, baseline vs fine-tuned, from metadata.json."""
    figures = {}
    for kind in kinds:
        metadata = run.metadata(kind)
        description = describe(kind)
        baseline_name, metric_names = description.baseline, list(description.headline_metrics)
        metrics = metadata.metrics or {}
        headline = {
            name: {
                "baseline": metrics[baseline_name][name],
                "fine_tuned": metrics["fine_tuned"][name],
            }
            for name in metric_names
        }
        figures[kind] = {
            **metadata.timings,
            "base_model": metadata.base_model,
            "metric": metric_names[0],
            "baseline_name": baseline_name,
            "baseline": headline[metric_names[0]]["baseline"],
            "fine_tuned": headline[metric_names[0]]["fine_tuned"],
            "headline_metrics": headline,
            "gate_passed": metadata.gate is not None and metadata.gate.passed,
        }
    return figures


def smoke_figures(onboarding: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {
            "kind": smoke["kind"],
            "target_model": smoke["target_model"],
            "endpoint": smoke["endpoint"],
            "cold_ms": smoke["cold_ms"],
            "warm_ms": smoke["warm_ms"],
            "passed": smoke["passed"],
        }
        for smoke in onboarding["smoke"]
    ]


def endpoint_runtime(service: ServiceProcess, endpoint: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"{service.url}{endpoint_path(endpoint)}", timeout=10) as r:
        return json.loads(r.read())


def serving_figures(service: ServiceProcess, endpoints: list[str]) -> dict[str, Any]:
    """What mme_local holds after warm-up: resident memory and each loaded model's timings."""
    figures: dict[str, Any] = {"endpoints": {}}
    for endpoint in endpoints:
        runtime = endpoint_runtime(service, endpoint)
        figures["endpoints"][endpoint] = {
            "peak_memory_mb": runtime["peak_memory_bytes"] / 2**20,
            "models": [
                {
                    "target_model": model["target_model"],
                    "memory_mb": model["memory_bytes"] / 2**20,
                    **{f"{stage}_s": seconds for stage, seconds in model["timings_s"].items()},
                }
                for model in runtime["models"]
            ],
        }
    assert service.process is not None
    figures["mme_local_and_triton_rss_mb"] = process_tree_memory(service.process.pid) / 2**20
    return figures


def onboard_and_warm(args: argparse.Namespace, work: Path, store: Path) -> dict[str, Any]:
    """Stand up the private stack, run both flows, and collect every figure they recorded."""
    environ = stack_environ(work, store)
    with private_mme_local(environ, work / "mme_local.log") as service:
        environ |= {
            "MME_FACTORY_ENDPOINTS__SAGEMAKER_ENDPOINT_URL": service.url,
            "MME_FACTORY_ENDPOINTS__SAGEMAKER_RUNTIME_ENDPOINT_URL": service.url,
        }
        with (
            environment(environ),
            prefect_test_harness(server_startup_timeout=PREFECT_START_TIMEOUT_S),
        ):
            onboarding, onboard_run, onboard_call_s = run_flow(
                onboard_customer, args.timeout, customer_id=args.customer, data_uri=str(args.data)
            )
            warmed, warmup_run, warmup_call_s = run_flow(warmup, WARMUP_TIMEOUT_S)
            with get_client(sync_client=True) as client:
                onboard_total_s = flow_run_seconds(client, onboard_run)
                warmup_wall_s = flow_run_seconds(client, warmup_run)
                stages = stage_seconds(recorded_task_runs(client, onboard_run), onboarding)
        endpoints = sorted({model["endpoint"] for model in onboarding["models"]})
        serving = serving_figures(service, endpoints)
    stages["outside tasks"] = onboard_total_s - sum(stages.values())
    run = RunDirectory.open(work / "state" / "runs" / args.customer / onboarding["run_id"])
    training = training_figures(run, list(run.record().kinds))
    return {
        "inputs": inputs_of(args, run, environ),
        "summary": {
            "onboard_total_s": onboard_total_s,
            "onboard_call_s": onboard_call_s,
            "stages": stages,
            "training": training,
            "peak_rss_mb": max(kind["peak_rss_mb"] for kind in training.values()),
            "smoke": smoke_figures(onboarding),
            "warmup_wall_s": warmup_wall_s,
            "warmup_call_s": warmup_call_s,
            "warmup": [
                {key: result[key] for key in ("target_model", "status", "state", "latency_ms")}
                for result in warmed
            ],
            "serving": serving,
            "version": onboarding["version"],
            "run_id": onboarding["run_id"],
        },
        "models": onboarding["models"],
    }


def inputs_of(args: argparse.Namespace, run: RunDirectory, environ: dict[str, str]) -> dict:
    record = run.record()
    return {
        "customer": args.customer,
        "data_uri": record.data_uri,
        "data_sha256": record.data_sha256,
        "seed": record.seed,
        "settings_from_environment": {
            name: value for name, value in environ.items() if name.startswith("MME_FACTORY_")
        },
        "training_versions": record.versions,
        "prefect": prefect.__version__,
    }


def main() -> int:
    args = parse_args()
    with tempfile.TemporaryDirectory(prefix="mme-pipeline-") as temporary:
        work = Path(temporary)
        store = args.keep_store or work / "store"
        results = {**machine_and_versions(), **onboard_and_warm(args, work, store)}
    results["versions"]["prefect"] = prefect.__version__
    print()
    print_table(table_rows(results))
    if args.keep_store is not None:
        print(f"store with the registered tarballs and manifests: {args.keep_store}")
    print(f"results: {write_results('pipeline', results, args.out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
