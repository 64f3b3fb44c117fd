"""The capacity plan as text tables and as one JSON document."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from planner.breakdown_report import breakdown_document, breakdown_lines
from planner.capacity import CustomerPlan, KindFootprint
from planner.footprint import FootprintReport
from planner.instance_catalog import InstanceCatalog
from planner.production_estimate import ProductionEstimate
from planner.text_table import text_table


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


def plan_lines(plans: list[CustomerPlan], catalog: InstanceCatalog) -> list[str]:
    lines: list[str] = []
    for instance_name in dict.fromkeys(plan.instance_type for plan in plans):
        instance = catalog.get(instance_name)
        lines += [
            "",
            f"{instance.describe()}, {instance.price_per_hour:g} {catalog.currency}/h",
        ]
        rows: list[list[str]] = []
        for plan in (p for p in plans if p.instance_type == instance_name):
            for kind in plan.kinds:
                rows.append(
                    [
                        str(plan.customers),
                        kind.kind,
                        kind.bound_by,
                        str(kind.target_models),
                        f"{kind.targets_per_instance} ({kind.customers_per_instance})",
                        str(kind.instances),
                        _money(kind.mme_monthly),
                        str(kind.single_model_endpoints),
                        _money(kind.single_model_monthly),
                        f"{kind.saving:.1%}",
                    ]
                )
            rows.append(
                [
                    str(plan.customers),
                    "all kinds",
                    *["", "", ""],
                    str(plan.instances),
                    _money(plan.mme_monthly),
                    "",
                    _money(plan.single_model_monthly),
                    f"{plan.saving:.1%}",
                ]
            )
        header = ["customers", "kind", "bound by", "TargetModels", "per instance (customers)"]
        header += ["MME instances", f"MME {catalog.currency}/month", "single-model endpoints"]
        header += [f"single-model {catalog.currency}/month", "saving"]
        lines += text_table(header, rows, text_columns=3)
    return lines


def plan_text(
    report: FootprintReport | None,
    footprints: list[KindFootprint],
    plans: list[CustomerPlan],
    catalog: InstanceCatalog,
    production: ProductionEstimate | None = None,
) -> str:
    """With a production estimate, the plan shown is sized from it; `footprints` are then the
    given ones (`--footprint`) that fill in kinds it did not measure."""
    lines: list[str] = []
    if report is not None:
        lines += [*footprint_lines(report), ""]
    shown = plans
    if production is not None:
        has_gpu = {name: catalog.get(name).has_gpu for name in production.estimates}
        lines += breakdown_lines(production.estimates, has_gpu, plans[0].utilisation)
        shown = production.plans
    if footprints:
        lines += ["", *footprints_used_lines(footprints)]
    first = shown[0]
    lines += [
        "",
        f"Plan: one multi-model endpoint per kind, loaded to at most {first.utilisation:.0%} of "
        f"memory, each model on {first.replicas} instance(s)"
        + (", sized from the production estimate." if production is not None else "."),
        "Baseline: one single-model endpoint per customer model, same instance type.",
        f"Prices: {catalog.region} on-demand, retrieved {catalog.retrieved}, "
        f"{catalog.hours_per_month:g} h/month.",
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


def plan_document(
    report: FootprintReport | None,
    footprints: list[KindFootprint],
    plans: list[CustomerPlan],
    catalog: InstanceCatalog,
    production: ProductionEstimate | None = None,
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
        "plans": [plan.to_dict() for plan in plans],
        "production_estimate": None
        if production is None
        else {
            **breakdown_document(
                production.measurements, production.estimates, production.max_batch
            ),
            "plans": [plan.to_dict() for plan in production.plans],
        },
    }
