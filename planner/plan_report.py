"""The capacity plan as text tables and as one JSON document."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from planner.breakdown_report import breakdown_document, breakdown_lines
from planner.capacity import CustomerPlan, KindFootprint
from planner.footprint import FootprintReport
from planner.gpu_slice_baseline import SliceCatalog
from planner.instance_catalog import InstanceCatalog, InstanceType
from planner.production_estimate import ProductionEstimate
from planner.text_table import text_table
from planner.throughput import Throughput, Traffic, device_mismatch


def footprint_lines(report: FootprintReport) -> list[str]:
    rows = [
        [
            model.kind,
            model.label,
            f"{model.tarball_mib:.1f}",
            f"{model.load_s:.2f}",
            f"{model.rss_added_mib:.0f}",
            f"{model.uss_added_mib:.0f}",
            f"{model.first_inference_ms:.1f}",
            f"{model.warm_p50_ms:.1f}",
            f"{model.warm_p95_ms:.1f}",
        ]
        for model in report.models
    ]
    header = ["kind", "TargetModel", "tarball MiB", "load s", "RSS added MiB", "USS added MiB"]
    header += ["first ms", "warm p50 ms", "warm p95 ms"]
    return [
        "Local emulator's figures: measured on this machine's CPU Triton, one model at a time",
        f"(tritonserver alone: {report.server_rss_mib:.0f} MiB resident). Its pytorch backend "
        "runs TorchScript in a",
        "Python stub, not libtorch: these are not what a production instance holds.",
        *text_table(header, rows, text_columns=2),
    ]


def footprints_used_lines(footprints: list[KindFootprint]) -> list[str]:
    rows = [
        [
            f.kind,
            str(f.targets_per_customer),
            f"{f.memory_mib:.0f}",
            f"{f.host_overhead_mib:.0f}",
        ]
        for f in footprints
    ]
    return [
        "Footprint planned with, per TargetModel",
        *text_table(["kind", "TargetModels per customer", "MiB", "host overhead MiB"], rows),
    ]


def _money(value: float) -> str:
    return f"{value:,.0f}"


def _optional(value: float | None, form: str = "{:,.1f}") -> str:
    return "-" if value is None else form.format(value)


def sizing_rows(plans: list[CustomerPlan]) -> list[list[str]]:
    return [
        [
            str(plan.customers),
            kind.kind,
            kind.bound_by,
            str(kind.target_models),
            f"{kind.targets_per_instance} ({kind.customers_per_instance})",
            str(kind.memory_instances),
            _optional(kind.peak_rps),
            _optional(kind.throughput.requests_per_s if kind.throughput else None),
            _optional(kind.throughput_instances, "{:d}"),
            str(kind.instances),
        ]
        for plan in plans
        for kind in plan.kinds
    ]


def cost_rows(plans: list[CustomerPlan]) -> list[list[str]]:
    rows: list[list[str]] = []
    for plan in plans:
        for kind in plan.kinds:
            slices = kind.slices
            rows.append(
                [
                    str(plan.customers),
                    kind.kind,
                    str(kind.instances),
                    _money(kind.mme_monthly),
                    str(kind.single_model_endpoints),
                    _money(kind.single_model_monthly),
                    f"{kind.saving:.1%}",
                    *(
                        [
                            str(slices.pods),
                            f"{slices.slice_gib:g}",
                            f"{slices.pods_per_node} ({slices.bound_by})",
                            str(slices.nodes),
                            _money(slices.monthly),
                            f"{kind.slice_saving:.1%}",
                        ]
                        if slices is not None and kind.slice_saving is not None
                        else ["-"] * 6
                    ),
                ]
            )
        slice_monthly, slice_saving = plan.slice_monthly, plan.slice_saving
        rows.append(
            [
                str(plan.customers),
                "all kinds",
                str(plan.instances),
                _money(plan.mme_monthly),
                "",
                _money(plan.single_model_monthly),
                f"{plan.saving:.1%}",
                *["", "", "", ""],
                "-" if slice_monthly is None else _money(slice_monthly),
                "-" if slice_saving is None else f"{slice_saving:.1%}",
            ]
        )
    return rows


def throughput_lines(plans: list[CustomerPlan], instance: InstanceType) -> list[str]:
    """Where each kind's requests per instance come from, and a GPU that is not this one."""
    sources: dict[str, Throughput] = {}
    for plan in plans:
        for kind in plan.kinds:
            if kind.throughput is not None:
                sources.setdefault(kind.kind, kind.throughput)
    lines = [f"  {kind}: {found.source}" for kind, found in sources.items()]
    notes = {device_mismatch(found, instance) for found in sources.values()} - {None}
    return (["Requests/s per instance:", *lines] if lines else []) + [
        f"  note: {note}" for note in sorted(n for n in notes if n)
    ]


def plan_lines(plans: list[CustomerPlan], catalog: InstanceCatalog) -> list[str]:
    lines: list[str] = []
    currency = catalog.currency
    for instance_name in dict.fromkeys(plan.instance_type for plan in plans):
        instance = catalog.get(instance_name)
        shown = [p for p in plans if p.instance_type == instance_name]
        lines += [
            "",
            f"{instance.describe()}, {instance.price_per_hour:g} {currency}/h",
            "Sizing: instances are the larger of the memory bound and the throughput bound",
        ]
        header = ["customers", "kind", "bound by", "TargetModels", "per instance (customers)"]
        header += ["memory instances", "peak req/s", "req/s per instance"]
        header += ["throughput instances", "instances"]
        lines += text_table(header, sizing_rows(shown), text_columns=3)
        lines += throughput_lines(shown, instance)
        header = ["customers", "kind", "MME instances", f"MME {currency}/month"]
        header += ["single-model endpoints", f"single-model {currency}/month", "saving"]
        header += ["K8s pods", "slice GiB", "pods per node (bound by)", "K8s nodes"]
        header += [f"K8s {currency}/month", "saving vs K8s"]
        lines += ["Cost:", *text_table(header, cost_rows(shown), text_columns=2)]
    return lines


def plan_text(
    report: FootprintReport | None,
    footprints: list[KindFootprint],
    plans: list[CustomerPlan],
    catalog: InstanceCatalog,
    production: ProductionEstimate | None = None,
    slices: SliceCatalog | None = None,
    traffic: Traffic | None = None,
) -> str:
    """With a production estimate, the plan shown is sized from it; `footprints` are then the
    given ones (`--footprint`) that fill in kinds it did not measure."""
    lines: list[str] = []
    if report is not None:
        lines += [*footprint_lines(report), ""]
    shown = plans
    if production is not None:
        has_gpu = {name: catalog.get(name).has_gpu for name in production.estimates}
        lines += breakdown_lines(
            production.estimates, has_gpu, plans[0].utilisation, production.gpu_check
        )
        shown = production.plans
    if footprints:
        lines += ["", *footprints_used_lines(footprints)]
    first = shown[0]
    lines += [
        "",
        f"Plan: one multi-model endpoint per kind, loaded to at most {first.utilisation:.0%} of "
        f"memory, each model on {first.replicas} instance(s)"
        + (", sized from the production estimate." if production is not None else "."),
        "Baselines, one serving process per customer model: a single-model endpoint each on the "
        "same instance type;",
        *(
            [
                f"  and {slices.describe()}",
                f"  (prices retrieved {slices.retrieved}; sources in "
                "planner/kubernetes_gpu_slices.yaml).",
            ]
            if slices is not None
            else []
        ),
        f"Prices: {catalog.region} on-demand, retrieved {catalog.retrieved}, "
        f"{catalog.hours_per_month:g} h/month.",
        *traffic_lines(traffic, first.utilisation),
    ]
    lines += plan_lines(shown, catalog)
    lines += [
        "",
        "To plan from production, pass --footprint KIND=MIB with memory per model from the",
        "endpoint's CloudWatch metrics (GPUMemoryUtilization or MemoryUtilization, and",
        "LoadedModelCount).",
    ]
    if production is not None:
        lines += [
            "The JSON document also holds the plan sized from the local emulator's figures "
            "(footprints, plans).",
        ]
    return "\n".join(lines)


def traffic_lines(traffic: Traffic | None, utilisation: float) -> list[str]:
    if traffic is None:
        return ["Traffic: none given (--peak-rps, --peak-rps-per-customer): memory alone sizes."]
    peaks = [f"{kind} {rps:g} req/s for the fleet" for kind, rps in traffic.fleet_rps.items()]
    peaks += [
        f"{kind} {rps:g} req/s per customer" for kind, rps in traffic.per_customer_rps.items()
    ]
    return [
        f"Traffic at peak: {', '.join(peaks)}; each instance carries at most {utilisation:.0%} of "
        "its requests/s."
    ]


def plan_document(
    report: FootprintReport | None,
    footprints: list[KindFootprint],
    plans: list[CustomerPlan],
    catalog: InstanceCatalog,
    production: ProductionEstimate | None = None,
    slices: SliceCatalog | None = None,
    traffic: Traffic | None = None,
) -> dict[str, Any]:
    """`footprints` and `plans` are sized from the local emulator's figures (or the given
    ones); `production_estimate` holds the breakdown and the plans sized from it."""
    instance_types = dict.fromkeys(plan.instance_type for plan in plans)
    return {
        "measured": None
        if report is None
        else {
            "runtime": "local emulator (CPU Triton; pytorch backend as a Python stub)",
            "server_rss_mib": round(report.server_rss_mib, 1),
            "models": [model.to_dict() for model in report.models],
        },
        "footprints": [asdict(footprint) for footprint in footprints],
        "catalog": {
            "source": catalog.source,
            "retrieved": catalog.retrieved,
            "region": catalog.region,
            "currency": catalog.currency,
            "hours_per_month": catalog.hours_per_month,
            "instance_types": {name: catalog.get(name).model_dump() for name in instance_types},
        },
        "slice_baseline": None if slices is None else slices.model_dump(),
        "traffic": None if traffic is None else asdict(traffic),
        "plans": [plan.to_dict() for plan in plans],
        "production_estimate": None
        if production is None
        else {
            **breakdown_document(
                production.measurements,
                production.estimates,
                production.max_batch,
                production.gpu_check,
            ),
            "plans": [plan.to_dict() for plan in production.plans],
        },
    }
