"""The capacity plan as text tables and as one JSON document."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from planner.capacity import CustomerPlan, KindFootprint
from planner.footprint import FootprintReport
from planner.instance_catalog import InstanceCatalog


def _table(header: list[str], rows: list[list[str]], text_columns: int = 1) -> list[str]:
    """Text columns first, left-aligned; numbers after them, right-aligned."""
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        aligned = [
            cell.ljust(width) if index < text_columns else cell.rjust(width)
            for index, (cell, width) in enumerate(zip(cells, widths, strict=True))
        ]
        return "  ".join(aligned).rstrip()

    return [line(header), *(line(row) for row in rows)]


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
        "Measured on the local Triton, one model at a time "
        f"(tritonserver alone: {report.server_rss_mib:.0f} MiB resident)",
        *_table(header, rows, text_columns=2),
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
        *_table(["kind", "TargetModels per customer", "MiB", "host overhead MiB"], rows),
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
        lines += _table(header, rows, text_columns=3)
    return lines


def plan_text(
    report: FootprintReport | None,
    footprints: list[KindFootprint],
    plans: list[CustomerPlan],
    catalog: InstanceCatalog,
) -> str:
    lines: list[str] = []
    if report is not None:
        lines += [*footprint_lines(report), ""]
    lines += footprints_used_lines(footprints)
    first = plans[0]
    lines += [
        "",
        f"Plan: one multi-model endpoint per kind, loaded to at most {first.utilisation:.0%} of "
        f"memory, each model on {first.replicas} instance(s).",
        "Baseline: one single-model endpoint per customer model, same instance type.",
        f"Prices: {catalog.region} on-demand, retrieved {catalog.retrieved}, "
        f"{catalog.hours_per_month:g} h/month.",
    ]
    lines += plan_lines(plans, catalog)
    lines += [
        "",
        "Measured footprints are host resident memory on this machine's CPU runtime; on a GPU",
        "instance they stand in for GPU memory. To plan from production, pass --footprint",
        "KIND=MIB with memory per model from the endpoint's CloudWatch metrics.",
    ]
    return "\n".join(lines)


def plan_document(
    report: FootprintReport | None,
    footprints: list[KindFootprint],
    plans: list[CustomerPlan],
    catalog: InstanceCatalog,
) -> dict[str, Any]:
    return {
        "measured": None
        if report is None
        else {
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
            "instance_types": {
                name: catalog.get(name).model_dump()
                for name in dict.fromkeys(plan.instance_type for plan in plans)
            },
        },
        "plans": [plan.to_dict() for plan in plans],
    }
