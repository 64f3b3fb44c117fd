"""`mme-factory plan`: measure served models, then size and price the endpoints for N customers.

Each TargetModel is measured twice: loaded on the local Triton (the emulator's memory, load
time and latency), and in-process with torch (weights, and activations at the largest
configured request). The production estimate adds the modeled runtime overhead per instance
type to the latter (or takes a GPU run's memory per model, `--measured`) and sizes the plan
from it: per kind, the larger of what memory needs and what the peak traffic needs.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
from pathlib import Path

from mme_factory.settings import load_settings

DEFAULT_INSTANCE_TYPES = ("ml.g4dn.xlarge", "ml.c5.2xlarge")


def _counts(value: str) -> list[int]:
    try:
        counts = [int(part) for part in value.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r}: give customer counts like 100,1000") from None
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError(f"{value!r}: customer counts must be at least 1")
    return counts


def _fraction(value: str) -> float:
    try:
        fraction = float(value)
    except ValueError:
        fraction = -1.0
    if not 0 < fraction <= 1:
        raise argparse.ArgumentTypeError(f"{value!r}: give a fraction in (0, 1], e.g. 0.8")
    return fraction


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "plan",
        help="production memory per model as a breakdown; instances for memory and traffic, and "
        "monthly cost for N customers",
        description=(
            "Measure each registered TargetModel (or each --tarball): loaded on the local Triton "
            "(the emulator's memory, load time, latency) and in-process with torch (weights; "
            "activations at the largest configured request). Add the modeled runtime overhead "
            "of each instance type (CUDA contexts, Python stubs, the server's reserve) to get "
            "the production memory per model (or take a GPU run's, --measured), then compute "
            "how many fit on an instance, how many instances N customers need per endpoint "
            "kind (for memory, or for the peak traffic if more), and the monthly cost against "
            "one single-model endpoint per customer model and one Kubernetes pod per customer "
            "model in a fixed GPU-memory slice."
        ),
    )
    source = parser.add_argument_group("what to measure (default: every registered customer)")
    source.add_argument("--customer", action="append", help="a registered customer (repeatable)")
    source.add_argument(
        "--tarball", action="append", metavar="[KIND=]PATH", help="a TargetModel tarball"
    )
    source.add_argument(
        "--footprint",
        action="append",
        metavar="KIND=MIB",
        help="use this memory per TargetModel instead of measuring the kind",
    )
    parser.add_argument("--customers", type=_counts, default=[100, 1000], metavar="N[,N...]")
    parser.add_argument(
        "--instance-type",
        action="append",
        help=f"repeatable (default: {', '.join(DEFAULT_INSTANCE_TYPES)})",
    )
    parser.add_argument(
        "--instance-types", type=Path, metavar="FILE", help="instance-type and price catalog"
    )
    parser.add_argument("--utilisation", type=_fraction, default=0.8, help="default 0.8")
    parser.add_argument(
        "--replicas", type=int, default=1, help="instances each model is loaded on (default 1)"
    )
    parser.add_argument(
        "--host-overhead-mib",
        type=float,
        default=0.0,
        help="host memory per model on GPU instances in the plan from the local emulator's "
        "figures (the production estimate models it); default 0",
    )
    parser.add_argument(
        "--max-batch",
        type=int,
        metavar="N",
        help="rows per request the activations are measured at (default: each model's "
        "packaged max_batch_size)",
    )
    parser.add_argument(
        "--measured",
        type=Path,
        metavar="FILE",
        help="a GPU run's figures (bench/gpu_check.py's JSON): its GPU memory per model and "
        "requests/s size GPU instance types",
    )
    traffic = parser.add_argument_group("peak traffic (default: none; memory alone sizes the plan)")
    traffic.add_argument(
        "--peak-rps",
        action="append",
        metavar="KIND=R",
        help="peak requests per second to the kind's endpoint, whole fleet (repeatable)",
    )
    traffic.add_argument(
        "--peak-rps-per-customer",
        action="append",
        metavar="KIND=R",
        help="peak requests per second per customer, times the customers planned for",
    )
    parser.add_argument("--repeats", type=int, default=20, help="warm requests per model")
    parser.add_argument("--json", action="store_true", help="print the plan as JSON")
    parser.add_argument("--out", type=Path, help="also write the JSON plan to this file")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from mme_factory.store import open_store
    from planner.capacity import CapacityError, plan_customers
    from planner.footprint import measure_tarballs, unpack_tarballs
    from planner.gpu_measurements import instance_throughputs, load_gpu_check
    from planner.gpu_slice_baseline import load_slice_catalog
    from planner.instance_catalog import load_catalog
    from planner.plan_inputs import (
        footprint_argument,
        footprints_from,
        registered_tarballs,
        tarball_argument,
        traffic_from,
        warm_latency_by_kind,
    )
    from planner.plan_report import plan_document, plan_text
    from planner.production_estimate import PlanConditions, estimate_production
    from planner.weights_and_activations import measure_in_process

    if args.replicas < 1 or args.repeats < 1 or args.host_overhead_mib < 0:
        raise CapacityError("--replicas and --repeats must be at least 1; overhead at least 0")
    if args.max_batch is not None and args.max_batch < 1:
        raise CapacityError("--max-batch must be at least 1")
    settings = load_settings(args.settings)
    catalog = load_catalog(args.instance_types)
    slices = load_slice_catalog()
    gpu_check = load_gpu_check(args.measured) if args.measured else None
    traffic = traffic_from(args.peak_rps, args.peak_rps_per_customer)
    instances = [catalog.get(name) for name in args.instance_type or DEFAULT_INSTANCE_TYPES]
    given = {
        f.kind: dataclasses.replace(f, host_overhead_mib=args.host_overhead_mib)
        for f in map(footprint_argument, args.footprint or [])
    }
    report = None
    in_process = []
    progress = (lambda message: print(message, file=sys.stderr)) if args.json else print
    with tempfile.TemporaryDirectory(prefix="mme-plan-") as work_dir:
        work = Path(work_dir)
        tarballs = [tarball_argument(value) for value in args.tarball or []]
        if not tarballs and (args.customer or not given):
            store = open_store(settings.store, settings)
            tarballs = registered_tarballs(store, args.customer, work / "tarballs")
        tarballs = [t for t in tarballs if t.kind not in given]
        if tarballs:
            # One unpacked copy serves both: Triton loads it, then torch reads it.
            repositories = unpack_tarballs(tarballs, settings, work)
            report = measure_tarballs(
                tarballs, repositories, settings, work, args.repeats, progress
            )
            in_process = measure_in_process(tarballs, repositories, args.max_batch, progress)
    measured = footprints_from(report.models, args.host_overhead_mib) if report else []
    footprints = [f for f in measured if f.kind not in given] + list(given.values())
    latency = warm_latency_by_kind(report.models) if report else {}
    plans = [
        plan_customers(
            footprints,
            instance,
            catalog,
            count,
            args.utilisation,
            args.replicas,
            traffic,
            instance_throughputs(instance, gpu_check, latency),
            slices,
        )
        for instance in instances
        for count in args.customers
    ]
    production = None
    if report is not None:
        production = estimate_production(
            in_process,
            instances,
            catalog,
            args.customers,
            PlanConditions(args.utilisation, args.replicas, traffic, latency, slices),
            given=list(given.values()),
            stub_uss_mib={k: v for model in report.models for k, v in model.stub_uss_mib.items()},
            max_batch=args.max_batch,
            gpu_check=gpu_check,
        )
    document = plan_document(report, footprints, plans, catalog, production, slices, traffic)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(document, indent=2), encoding="utf-8")
    if args.json:
        print(json.dumps(document, indent=2))
    else:
        shown = list(given.values()) if production is not None else footprints
        print(plan_text(report, shown, plans, catalog, production, slices, traffic))
    return 0
