"""TargetModels per ml.g4dn.xlarge and the monthly bill for 100 and 1,000 customers, as the
production plan counts them, against the figures before and the goals.

    .venv/bin/python bench/bench_plan_density.py [--tarball KIND=PATH ...] [--measured FILE]
        [--peak-rps KIND=R ...] [--peak-rps-per-customer KIND=R ...] [--no-local-run]
        [--out bench/results]

Runs what `mme-factory plan --instance-type ml.g4dn.xlarge --customers 100,1000` runs, in this
process: the given tarballs (or every registered TargetModel of the store in the settings) are
unpacked, loaded one at a time on the local Triton (each stub's memory and the warm latency;
`--no-local-run` skips it, so the stubs' host memory is modeled and a traffic peak needs
`--measured`), measured in-process with torch (weights, activations, a generator's key/value
cache), and sized on ml.g4dn.xlarge. Prints per kind the TargetModels per instance, what binds,
the instances and the monthly cost, beside one single-model endpoint per customer model and one
Kubernetes pod per customer model in a GPU slice; then the figures before
(`previous_figures.json`, `plan_density`) and whether each goal is met. Writes the JSON under
`--out`.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench_report import machine_and_versions, write_results

from mme_factory.settings import load_settings
from mme_factory.store import open_store
from planner.capacity import CustomerPlan
from planner.footprint import FootprintReport, measure_tarballs, unpack_tarballs
from planner.gpu_measurements import GpuCheck, load_gpu_check
from planner.gpu_slice_baseline import load_slice_catalog
from planner.instance_catalog import load_catalog
from planner.plan_inputs import (
    registered_tarballs,
    tarball_argument,
    traffic_from,
    warm_latency_by_kind,
)
from planner.plan_report import traffic_lines
from planner.production_estimate import PlanConditions, ProductionEstimate, estimate_production
from planner.text_table import text_table
from planner.throughput import Traffic
from planner.weights_and_activations import measure_in_process

REPO = Path(__file__).resolve().parent.parent
PREVIOUS = Path(__file__).with_name("previous_figures.json")
INSTANCE_TYPE = "ml.g4dn.xlarge"
CUSTOMERS = (100, 1000)
UTILISATION = 0.8
# The goals: TargetModels per ml.g4dn.xlarge for each kind, and a tenth of the bill before
# for 1,000 customers.
MIN_TARGETS = {"autocomplete": 200, "embedding": 200, "classifier": 135}
COST_FRACTION_OF_BEFORE = 0.1


def previous_density() -> dict[str, Any]:
    return json.loads(PREVIOUS.read_text(encoding="utf-8"))["plan_density"]


def progress(message: str) -> None:
    print(message, file=sys.stderr)


def measure(
    args: argparse.Namespace, gpu_check: GpuCheck | None, traffic: Traffic | None
) -> tuple[ProductionEstimate, FootprintReport | None]:
    settings = load_settings(args.settings)
    catalog = load_catalog()
    instance = catalog.get(INSTANCE_TYPE)
    with tempfile.TemporaryDirectory(prefix="bench-plan-") as work_dir:
        work = Path(work_dir)
        tarballs = [tarball_argument(value) for value in args.tarball or []]
        if not tarballs:
            tarballs = registered_tarballs(
                open_store(settings.store, settings), None, work / "tarballs"
            )
        repositories = unpack_tarballs(tarballs, settings, work)
        report = None
        if not args.no_local_run:
            report = measure_tarballs(tarballs, repositories, settings, work, 5, progress)
        in_process = measure_in_process(tarballs, repositories, None, progress)
    conditions = PlanConditions(
        UTILISATION,
        1,
        traffic,
        warm_latency_by_kind(report.models) if report else None,
        load_slice_catalog(),
    )
    stubs = (
        {k: v for model in report.models for k, v in model.stub_uss_mib.items()} if report else None
    )
    estimate = estimate_production(
        in_process,
        [instance],
        catalog,
        list(CUSTOMERS),
        conditions,
        stub_uss_mib=stubs,
        gpu_check=gpu_check,
    )
    return estimate, report


def _money(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def plan_rows(plans: list[CustomerPlan]) -> list[list[str]]:
    rows = []
    for plan in plans:
        for kind in plan.kinds:
            rows.append(
                [
                    str(plan.customers),
                    kind.kind,
                    str(kind.targets_per_instance),
                    kind.bound_by,
                    str(kind.instances),
                    _money(kind.mme_monthly),
                    _money(kind.single_model_monthly),
                    _percent(kind.saving),
                    _money(kind.slices.monthly if kind.slices else None),
                    _percent(kind.slice_saving),
                ]
            )
        rows.append(
            [
                str(plan.customers),
                "all kinds",
                "",
                "",
                str(plan.instances),
                _money(plan.mme_monthly),
                _money(plan.single_model_monthly),
                _percent(plan.saving),
                _money(plan.slice_monthly),
                _percent(plan.slice_saving),
            ]
        )
    return rows


def comparison(plans: list[CustomerPlan], before: dict[str, Any]) -> dict[str, Any]:
    """Before and after per kind and in total, and each goal met or missed."""
    after = {kind.kind: kind for kind in plans[-1].kinds}
    by_customers = {plan.customers: plan for plan in plans}
    cost_goal = before["monthly_usd"]["1000"] * COST_FRACTION_OF_BEFORE
    goals = {
        f"{kind} TargetModels per {INSTANCE_TYPE} >= {minimum}": (
            None if kind not in after else after[kind].targets_per_instance >= minimum
        )
        for kind, minimum in MIN_TARGETS.items()
    }
    monthly_1000 = by_customers[1000].mme_monthly if 1000 in by_customers else None
    goals[f"1,000 customers <= {cost_goal:,.1f} USD/month"] = (
        None
        if monthly_1000 is None or set(after) != set(MIN_TARGETS)
        else monthly_1000 <= cost_goal
    )
    return {
        "targets_per_instance": {
            kind: {
                "before": number,
                "after": after[kind].targets_per_instance if kind in after else None,
            }
            for kind, number in before["targets_per_instance"].items()
        },
        "bound_by": {
            kind: {"before": bound, "after": after[kind].bound_by if kind in after else None}
            for kind, bound in before["bound_by"].items()
        },
        "monthly_usd": {
            count: {
                "before": number,
                "after": round(by_customers[int(count)].mme_monthly, 2)
                if int(count) in by_customers
                else None,
            }
            for count, number in before["monthly_usd"].items()
        },
        "goals": goals,
    }


def comparison_lines(result: dict[str, Any]) -> list[str]:
    rows = [
        [f"{kind} TargetModels per instance", str(v["before"]), str(v["after"])]
        for kind, v in result["targets_per_instance"].items()
    ]
    rows += [
        [f"{kind} bound by", v["before"], str(v["after"])] for kind, v in result["bound_by"].items()
    ]
    rows += [
        [f"{count} customers, USD/month", _money(v["before"]), _money(v["after"])]
        for count, v in result["monthly_usd"].items()
    ]
    goals = [
        f"  {'not measured' if met is None else 'pass' if met else 'miss'}: {goal}"
        for goal, met in result["goals"].items()
    ]
    return [*text_table(["measure", "before", "after"], rows), "Goals:", *goals]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tarball", action="append", metavar="KIND=PATH")
    parser.add_argument("--measured", type=Path, metavar="FILE", help="bench/gpu_check.py's JSON")
    parser.add_argument("--peak-rps", action="append", metavar="KIND=R")
    parser.add_argument("--peak-rps-per-customer", action="append", metavar="KIND=R")
    parser.add_argument("--no-local-run", action="store_true", help="skip the local Triton run")
    parser.add_argument("--settings", type=Path, help="settings file (default: the environment's)")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results")
    args = parser.parse_args()

    gpu_check = load_gpu_check(args.measured) if args.measured else None
    traffic = traffic_from(args.peak_rps, args.peak_rps_per_customer)
    estimate, report = measure(args, gpu_check, traffic)
    plans = estimate.plans
    catalog, slices = load_catalog(), load_slice_catalog()
    instance = catalog.get(INSTANCE_TYPE)
    before = previous_density()
    result = comparison(plans, before)
    header = ["customers", "kind", "TargetModels per instance", "bound by", "instances"]
    header += ["MME USD/month", "single-model USD/month", "saving"]
    header += ["K8s slices USD/month", "saving vs K8s"]
    price = f"{instance.price_per_hour:g} {catalog.currency}/h"
    print(f"{instance.describe()}, {price}, loaded to at most {UTILISATION:.0%} of memory")
    print(f"Baseline: one single-model endpoint per customer model; {slices.describe()}.")
    for line in traffic_lines(traffic, UTILISATION):
        print(line)
    for line in text_table(header, plan_rows(plans), text_columns=2):
        print(line)
    print()
    print(f"Before: {before['measured']}")
    for line in comparison_lines(result):
        print(line)
    results = {
        **machine_and_versions(),
        "inputs": {
            "tarballs": args.tarball or "registered store",
            "measured": None if gpu_check is None else gpu_check.model_dump(by_alias=True),
            "peak_rps": args.peak_rps,
            "peak_rps_per_customer": args.peak_rps_per_customer,
            "local_run": not args.no_local_run,
        },
        "local_run": None if report is None else [model.to_dict() for model in report.models],
        "instance_type": INSTANCE_TYPE,
        "breakdown": [e.to_dict() for e in estimate.estimates[INSTANCE_TYPE]],
        "plans": [plan.to_dict() for plan in plans],
        "slice_baseline": slices.model_dump(),
        "before": before,
        "comparison": result,
    }
    print(f"\nwrote {write_results('plan_density', results, args.out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
