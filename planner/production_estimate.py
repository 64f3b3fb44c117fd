"""Production memory per TargetModel and instance type, as a breakdown, and the fit it gives.

Per TargetModel: the weights and activations measured in-process, plus the runtime overhead of
its members where they run on that instance type (`runtime_overhead`). Members on the GPU count
against GPU memory, members on the CPU and every stub's host memory against host memory. A
kind is planned with its largest TargetModel; the instance's own reserve (OS, tritonserver, its
CUDA context) comes out of the usable memory once per instance (`capacity`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from planner.capacity import CustomerPlan, Fit, KindFootprint, plan_customers, targets_per_instance
from planner.instance_catalog import InstanceCatalog, InstanceType
from planner.plan_inputs import KINDS, targets_per_customer
from planner.runtime_overhead import MIB, Overhead, instance_reserve, member_overhead
from planner.sourced_figure import Figure, total
from planner.weights_and_activations import TargetModelMeasurement


@dataclass(frozen=True)
class Breakdown:
    """One TargetModel on one instance type; every figure in MiB with its source."""

    kind: str
    label: str
    instance_type: str
    weights: Figure
    activations: Figure
    overhead_gpu: Figure
    overhead_host: Figure
    total_gpu: Figure
    total_host: Figure
    measured_at: str

    def binding_mib(self, has_gpu: bool) -> tuple[float, float]:
        return (self.total_gpu.mib, self.total_host.mib) if has_gpu else (self.total_host.mib, 0)

    def to_dict(self) -> dict[str, Any]:
        figures = ["weights", "activations", "overhead_gpu", "overhead_host"]
        figures += ["total_gpu", "total_host"]
        return {
            "kind": self.kind,
            "target_model": self.label,
            "instance_type": self.instance_type,
            "measured_at": self.measured_at,
            **{name: getattr(self, name).to_dict() for name in figures},
        }


def breakdown(
    measurement: TargetModelMeasurement,
    instance: InstanceType,
    stub_uss_mib: dict[str, float] | None = None,
) -> Breakdown:
    """The production memory of one measured TargetModel on `instance`."""
    stubs = stub_uss_mib or {}
    gpu: list[Figure] = []
    host: list[Figure] = []
    weights: list[Figure] = []
    activations: list[Figure] = []
    overheads: list[Overhead] = []
    for member in measurement.members:
        on_gpu = instance.has_gpu and member.runs_on_gpu
        held = Figure.measured(member.weights_bytes / MIB).times(member.instance_count)
        working = Figure.measured(member.activation_bytes / MIB).times(member.instance_count)
        overhead = member_overhead(member, on_gpu, stubs.get(member.name))
        weights.append(held)
        activations.append(working)
        overheads.append(overhead)
        (gpu if on_gpu else host).extend([held, working])
        gpu.append(overhead.gpu)
        host.append(overhead.host)
    shapes = [m.measured_at for m in measurement.members if m.measured_at]
    return Breakdown(
        kind=measurement.kind,
        label=measurement.label,
        instance_type=instance.name,
        weights=total(weights),
        activations=total(activations),
        overhead_gpu=total([o.gpu for o in overheads]),
        overhead_host=total([o.host for o in overheads]),
        total_gpu=total(gpu),
        total_host=total(host),
        measured_at="; ".join(shapes),
    )


@dataclass(frozen=True)
class KindEstimate:
    """A kind on an instance type: its largest TargetModel, the instance reserve and the fit."""

    breakdown: Breakdown
    reserve: Overhead
    footprint: KindFootprint
    fit: Fit

    @property
    def customers_per_instance(self) -> int:
        return self.fit.targets_per_instance // self.footprint.targets_per_customer

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.breakdown.to_dict(),
            "instance_reserve_gpu": self.reserve.gpu.to_dict(),
            "instance_reserve_host": self.reserve.host.to_dict(),
            "targets_per_instance": self.fit.targets_per_instance,
            "customers_per_instance": self.customers_per_instance,
            "bound_by": self.fit.bound_by,
        }


def kind_footprint(
    kind: str, largest: Breakdown, reserve: Overhead, has_gpu: bool
) -> KindFootprint:
    """The capacity arithmetic's view of a breakdown."""
    if has_gpu:
        return KindFootprint(
            kind=kind,
            targets_per_customer=targets_per_customer(kind),
            memory_mib=largest.total_gpu.mib,
            host_overhead_mib=largest.total_host.mib,
            reserved_mib=reserve.gpu.mib,
            reserved_host_mib=reserve.host.mib,
        )
    return KindFootprint(
        kind=kind,
        targets_per_customer=targets_per_customer(kind),
        memory_mib=largest.total_host.mib,
        reserved_mib=reserve.host.mib,
    )


def estimate_kinds(
    measurements: list[TargetModelMeasurement],
    instance: InstanceType,
    utilisation: float,
    stub_uss_mib: dict[str, float] | None = None,
) -> list[KindEstimate]:
    """One estimate per measured kind on `instance`, sized by the kind's largest TargetModel."""
    reserve = instance_reserve(instance.has_gpu)
    estimates = []
    for kind in KINDS:
        breakdowns = [breakdown(m, instance, stub_uss_mib) for m in measurements if m.kind == kind]
        if not breakdowns:
            continue
        largest = max(breakdowns, key=lambda b: b.binding_mib(instance.has_gpu))
        footprint = kind_footprint(kind, largest, reserve, instance.has_gpu)
        fit = targets_per_instance(instance, footprint, utilisation)
        estimates.append(KindEstimate(largest, reserve, footprint, fit))
    return estimates


@dataclass(frozen=True)
class ProductionEstimate:
    """Every measured kind on every instance type, and the plans sized from them."""

    measurements: list[TargetModelMeasurement]
    estimates: dict[str, list[KindEstimate]]  # instance type -> one per measured kind
    plans: list[CustomerPlan]
    max_batch: int | None = None


def estimate_production(
    measurements: list[TargetModelMeasurement],
    instances: list[InstanceType],
    catalog: InstanceCatalog,
    customer_counts: list[int],
    utilisation: float = 0.8,
    replicas: int = 1,
    given: list[KindFootprint] | None = None,
    stub_uss_mib: dict[str, float] | None = None,
    max_batch: int | None = None,
) -> ProductionEstimate:
    """Breakdowns per instance type, then instances and cost; `given` footprints fill in kinds
    that were not measured."""
    estimates = {
        instance.name: estimate_kinds(measurements, instance, utilisation, stub_uss_mib)
        for instance in instances
    }
    plans = []
    for instance in instances:
        measured = [estimate.footprint for estimate in estimates[instance.name]]
        kinds = {footprint.kind for footprint in measured}
        footprints = measured + [f for f in given or [] if f.kind not in kinds]
        plans += [
            plan_customers(footprints, instance, catalog, count, utilisation, replicas)
            for count in customer_counts
        ]
    return ProductionEstimate(measurements, estimates, plans, max_batch)
