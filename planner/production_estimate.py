"""Production memory per TargetModel and instance type, as a breakdown, and the fit it gives.

Per TargetModel: the weights and activations measured in-process, plus the runtime overhead of
its members where they run on that instance type (`runtime_overhead`). Members on the GPU count
against GPU memory, members on the CPU and every stub's host memory and `/dev/shm` region
against host memory. With a GPU run's figures (`--measured`), the GPU memory one model of the
kind held there replaces the weights and activations of its GPU members on GPU instance types.
A kind is planned with its largest TargetModel; the instance's own reserve (OS, tritonserver,
its one CUDA context) comes out of the usable memory once per instance (`capacity`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from planner.capacity import CustomerPlan, Fit, KindFootprint, plan_customers, targets_per_instance
from planner.gpu_measurements import GpuCheck, instance_throughputs
from planner.gpu_slice_baseline import SliceCatalog
from planner.instance_catalog import InstanceCatalog, InstanceType
from planner.plan_inputs import KINDS, targets_per_customer
from planner.runtime_overhead import MIB, Overhead, instance_reserve, member_overhead
from planner.sourced_figure import Figure, total
from planner.throughput import Traffic
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
    shm: Figure  # the Python stubs' /dev/shm regions, part of total_host
    total_gpu: Figure
    total_host: Figure
    measured_at: str
    model_gpu: Figure  # the GPU members' weights and activations, or a GPU run's figure
    cpu_side_host: Figure  # what the CPU members hold on a GPU instance, stubs' /dev/shm aside

    def binding_mib(self, has_gpu: bool) -> tuple[float, float]:
        return (self.total_gpu.mib, self.total_host.mib) if has_gpu else (self.total_host.mib, 0)

    def to_dict(self) -> dict[str, Any]:
        figures = ["weights", "activations", "overhead_gpu", "overhead_host", "shm"]
        figures += ["total_gpu", "total_host", "model_gpu", "cpu_side_host"]
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
    gpu_memory: Figure | None = None,
) -> Breakdown:
    """The production memory of one measured TargetModel on `instance`; `gpu_memory` is what a
    GPU run measured for one model of its kind (weights and activations on the GPU)."""
    stubs = stub_uss_mib or {}
    host: list[Figure] = []
    weights: list[Figure] = []
    activations: list[Figure] = []
    overheads: list[Overhead] = []
    model_gpu: list[Figure] = []
    cpu_side: list[Figure] = []
    for member in measurement.members:
        on_gpu = instance.has_gpu and member.runs_on_gpu
        held = Figure.measured(member.weights_bytes / MIB).times(member.instance_count)
        working = Figure.measured(member.activation_bytes / MIB).times(member.instance_count)
        overhead = member_overhead(member, on_gpu, stubs.get(member.name))
        weights.append(held)
        activations.append(working)
        overheads.append(overhead)
        if member.runs_on_gpu:
            model_gpu.extend([held, working])
        else:
            cpu_side.extend([held, working, overhead.host])
        if not on_gpu:
            host.extend([held, working])
        host.extend([overhead.host, overhead.shm])
    on_gpu_total = gpu_memory if gpu_memory is not None else total(model_gpu)
    overhead_gpu = total([o.gpu for o in overheads])
    shapes = [m.measured_at for m in measurement.members if m.measured_at]
    return Breakdown(
        kind=measurement.kind,
        label=measurement.label,
        instance_type=instance.name,
        weights=total(weights),
        activations=total(activations),
        overhead_gpu=overhead_gpu,
        overhead_host=total([o.host for o in overheads]),
        shm=total([o.shm for o in overheads]),
        total_gpu=on_gpu_total + overhead_gpu if instance.has_gpu else Figure(0.0),
        total_host=total(host),
        measured_at="; ".join(shapes),
        model_gpu=on_gpu_total,
        cpu_side_host=total(cpu_side),
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
    alone = {"model_gpu_mib": largest.model_gpu.mib, "cpu_side_host_mib": largest.cpu_side_host.mib}
    if has_gpu:
        return KindFootprint(
            kind=kind,
            targets_per_customer=targets_per_customer(kind),
            memory_mib=largest.total_gpu.mib,
            host_overhead_mib=largest.total_host.mib,
            reserved_mib=reserve.gpu.mib,
            reserved_host_mib=reserve.host.mib,
            **alone,
        )
    return KindFootprint(
        kind=kind,
        targets_per_customer=targets_per_customer(kind),
        memory_mib=largest.total_host.mib,
        reserved_mib=reserve.host.mib,
        **alone,
    )


def estimate_kinds(
    measurements: list[TargetModelMeasurement],
    instance: InstanceType,
    utilisation: float,
    stub_uss_mib: dict[str, float] | None = None,
    gpu_check: GpuCheck | None = None,
) -> list[KindEstimate]:
    """One estimate per measured kind on `instance`, sized by the kind's largest TargetModel."""
    reserve = instance_reserve(instance.has_gpu)
    estimates = []
    for kind in KINDS:
        on_gpu = gpu_check.gpu_memory(kind) if gpu_check and instance.has_gpu else None
        breakdowns = [
            breakdown(m, instance, stub_uss_mib, on_gpu) for m in measurements if m.kind == kind
        ]
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
    gpu_check: GpuCheck | None = None


@dataclass(frozen=True)
class PlanConditions:
    """What the plans are sized for besides memory: traffic and the baselines' catalog."""

    utilisation: float = 0.8
    replicas: int = 1
    traffic: Traffic | None = None
    warm_p50_ms: dict[str, float] | None = None  # per kind, from the local run
    slices: SliceCatalog | None = None


def estimate_production(
    measurements: list[TargetModelMeasurement],
    instances: list[InstanceType],
    catalog: InstanceCatalog,
    customer_counts: list[int],
    conditions: PlanConditions | None = None,
    given: list[KindFootprint] | None = None,
    stub_uss_mib: dict[str, float] | None = None,
    max_batch: int | None = None,
    gpu_check: GpuCheck | None = None,
) -> ProductionEstimate:
    """Breakdowns per instance type, then instances and cost; `given` footprints fill in kinds
    that were not measured."""
    conditions = conditions or PlanConditions()
    estimates = {
        instance.name: estimate_kinds(
            measurements, instance, conditions.utilisation, stub_uss_mib, gpu_check
        )
        for instance in instances
    }
    plans = []
    for instance in instances:
        measured = [estimate.footprint for estimate in estimates[instance.name]]
        kinds = {footprint.kind for footprint in measured}
        footprints = measured + [f for f in given or [] if f.kind not in kinds]
        throughputs = instance_throughputs(instance, gpu_check, conditions.warm_p50_ms)
        plans += [
            plan_customers(
                footprints,
                instance,
                catalog,
                count,
                conditions.utilisation,
                conditions.replicas,
                conditions.traffic,
                throughputs,
                conditions.slices,
            )
            for count in customer_counts
        ]
    return ProductionEstimate(measurements, estimates, plans, max_batch, gpu_check)
