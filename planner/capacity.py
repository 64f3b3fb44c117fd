"""How many TargetModels fit on an instance, how many instances N customers need, and the cost.

Pure arithmetic over footprints. A TargetModel's footprint is the memory it holds while
loaded. On a GPU instance it is counted against GPU memory (where the weights and their
activations live); on a CPU instance against host memory. On GPU instances a Python-backend
model also holds host memory for its stub process and CUDA context; give that as
`host_overhead_mib` to count it against host memory as well. What every instance holds before
any model (the OS, the server and its CUDA context) is `reserved_mib` of the footprint's memory
and `reserved_host_mib` of host memory on GPU instances; it comes out of the utilised share.

Each kind's instances are the larger of two bounds: memory (the TargetModels that fit, as
above) and, when a peak of traffic is given, throughput (`throughput`): the plan names the one
that binds.

Two baselines price what the platform replaces, one serving process per customer model (an
embedding model's two encoders share one): a single-model SageMaker endpoint each, on the same
instance type, and a Kubernetes pod each in a fixed slice of a GPU (`gpu_slice_baseline`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from mme_factory.capacity import instances_needed, models_per_instance
from mme_factory.errors import MmeFactoryError
from planner.gpu_slice_baseline import SliceBaseline, SliceCatalog, pod_of, slice_baseline
from planner.instance_catalog import InstanceCatalog, InstanceType
from planner.throughput import Throughput, Traffic, throughput_instances

THROUGHPUT = "throughput"


class CapacityError(MmeFactoryError):
    """A model does not fit on the instance type, or a plan input is out of range."""


@dataclass(frozen=True)
class KindFootprint:
    """One model kind as served: TargetModels per customer and the memory each holds."""

    kind: str
    targets_per_customer: int
    memory_mib: float
    host_overhead_mib: float = 0.0
    load_s: float | None = None
    warm_p50_ms: float | None = None
    reserved_mib: float = 0.0  # per instance, of the memory `memory_mib` is counted against
    reserved_host_mib: float = 0.0  # per instance, host memory on GPU instances
    # The model alone in a process of its own (GPU-slice baseline): its weights and activations
    # on the GPU and its CPU-side steps' host memory, without CUDA contexts. When not given,
    # `memory_mib` stands for the first and nothing for the second.
    model_gpu_mib: float | None = None
    cpu_side_host_mib: float | None = None


@dataclass(frozen=True)
class Fit:
    targets_per_instance: int
    bound_by: str  # "GPU memory" or "host memory"


def targets_per_instance(
    instance: InstanceType, footprint: KindFootprint, utilisation: float
) -> Fit:
    """TargetModels that stay loaded together while using at most `utilisation` of memory."""
    if not 0 < utilisation <= 1:
        raise CapacityError(f"utilisation must be in (0, 1], got {utilisation}")
    if footprint.memory_mib <= 0:
        raise CapacityError(f"{footprint.kind}: footprint must be positive")
    host_usable = instance.memory_mib * utilisation
    limits: list[tuple[int, str]] = []
    if instance.has_gpu:
        gpu_usable = instance.gpu_memory_mib * utilisation - footprint.reserved_mib
        limits.append((models_per_instance(gpu_usable, footprint.memory_mib), "GPU memory"))
        if footprint.host_overhead_mib > 0:
            host_usable -= footprint.reserved_host_mib
            limits.append(
                (models_per_instance(host_usable, footprint.host_overhead_mib), "host memory")
            )
    else:
        host_usable -= footprint.reserved_mib
        limits.append((models_per_instance(host_usable, footprint.memory_mib), "host memory"))
    count, bound_by = min(limits)
    if count < 1:
        raise CapacityError(
            f"one {footprint.kind} TargetModel ({footprint.memory_mib:.0f} MiB) does not fit in "
            f"{utilisation:.0%} of {bound_by} on {instance.describe()}"
        )
    return Fit(count, bound_by)


@dataclass(frozen=True)
class KindPlan:
    kind: str
    instance_type: str
    customers: int
    target_models: int
    targets_per_instance: int
    customers_per_instance: int  # whole customers' models of this kind
    bound_by: str  # GPU memory, host memory or throughput: what sets `instances`
    instances: int
    mme_monthly: float
    single_model_endpoints: int
    single_model_monthly: float
    memory_instances: int  # what memory alone needs
    peak_rps: float | None = None
    throughput: Throughput | None = None  # per instance
    throughput_instances: int | None = None
    slices: SliceBaseline | None = None

    @property
    def saving(self) -> float:
        return 1 - self.mme_monthly / self.single_model_monthly

    @property
    def slice_saving(self) -> float | None:
        return None if self.slices is None else 1 - self.mme_monthly / self.slices.monthly

    def to_dict(self) -> dict[str, Any]:
        saving = self.slice_saving
        return {
            **asdict(self),
            "saving": round(self.saving, 4),
            "slice_saving": None if saving is None else round(saving, 4),
        }


def _pod_of(footprint: KindFootprint) -> tuple[float, float]:
    """(GPU, host) MiB of one customer's models of the kind, without CUDA contexts."""
    gpu = footprint.memory_mib if footprint.model_gpu_mib is None else footprint.model_gpu_mib
    host = footprint.cpu_side_host_mib or 0.0
    return gpu * footprint.targets_per_customer, host * footprint.targets_per_customer


def plan_kind(
    footprint: KindFootprint,
    instance: InstanceType,
    catalog: InstanceCatalog,
    customers: int,
    utilisation: float = 0.8,
    replicas: int = 1,
    peak_rps: float | None = None,
    throughput: Throughput | None = None,
    slices: SliceCatalog | None = None,
) -> KindPlan:
    """Instances for `customers` on one MME of `instance`, each model loaded on `replicas`:
    what memory needs, or what carrying `peak_rps` at `throughput` per instance needs if more."""
    if customers < 1 or replicas < 1:
        raise CapacityError("customers and replicas must be at least 1")
    fit = targets_per_instance(instance, footprint, utilisation)
    target_models = customers * footprint.targets_per_customer
    memory_instances = instances_needed(target_models, fit.targets_per_instance, replicas)
    by_throughput = None
    if peak_rps is not None:
        if throughput is None:
            raise CapacityError(
                f"{footprint.kind} on {instance.name}: a peak of {peak_rps:g} requests/s is "
                "given, but no measurement says how many one instance serves; measure the kind "
                "(not --footprint), or pass --measured for GPU instance types"
            )
        by_throughput = throughput_instances(peak_rps, throughput, utilisation)
    instances = max(memory_instances, by_throughput or 0)
    bound_by = fit.bound_by if instances == memory_instances else THROUGHPUT
    baseline = None
    if slices is not None:
        gpu, host = _pod_of(footprint)
        baseline = slice_baseline(pod_of(gpu, host), slices, customers, replicas)
    single_instances = customers * replicas
    return KindPlan(
        kind=footprint.kind,
        instance_type=instance.name,
        customers=customers,
        target_models=target_models,
        targets_per_instance=fit.targets_per_instance,
        customers_per_instance=fit.targets_per_instance // footprint.targets_per_customer,
        bound_by=bound_by,
        instances=instances,
        mme_monthly=catalog.monthly_price(instance, instances),
        single_model_endpoints=customers,
        single_model_monthly=catalog.monthly_price(instance, single_instances),
        memory_instances=memory_instances,
        peak_rps=peak_rps,
        throughput=throughput,
        throughput_instances=by_throughput,
        slices=baseline,
    )


@dataclass(frozen=True)
class CustomerPlan:
    instance_type: str
    customers: int
    utilisation: float
    replicas: int
    kinds: list[KindPlan]
    slice_cluster_monthly: float = 0.0  # the GPU-slice baseline's control plane, once

    @property
    def instances(self) -> int:
        return sum(plan.instances for plan in self.kinds)

    @property
    def mme_monthly(self) -> float:
        return sum(plan.mme_monthly for plan in self.kinds)

    @property
    def single_model_monthly(self) -> float:
        return sum(plan.single_model_monthly for plan in self.kinds)

    @property
    def saving(self) -> float:
        return 1 - self.mme_monthly / self.single_model_monthly

    @property
    def slice_monthly(self) -> float | None:
        """The GPU-slice baseline's nodes for every kind, and its cluster."""
        if not self.kinds or any(plan.slices is None for plan in self.kinds):
            return None
        nodes = sum(plan.slices.monthly for plan in self.kinds if plan.slices is not None)
        return nodes + self.slice_cluster_monthly

    @property
    def slice_saving(self) -> float | None:
        baseline = self.slice_monthly
        return None if baseline is None else 1 - self.mme_monthly / baseline

    def to_dict(self) -> dict[str, Any]:
        slice_monthly, slice_saving = self.slice_monthly, self.slice_saving
        return {
            "instance_type": self.instance_type,
            "customers": self.customers,
            "utilisation": self.utilisation,
            "replicas": self.replicas,
            "kinds": [plan.to_dict() for plan in self.kinds],
            "instances": self.instances,
            "mme_monthly": round(self.mme_monthly, 2),
            "single_model_monthly": round(self.single_model_monthly, 2),
            "saving": round(self.saving, 4),
            "slice_monthly": None if slice_monthly is None else round(slice_monthly, 2),
            "slice_cluster_monthly": round(self.slice_cluster_monthly, 2),
            "slice_saving": None if slice_saving is None else round(slice_saving, 4),
        }


def plan_customers(
    footprints: list[KindFootprint],
    instance: InstanceType,
    catalog: InstanceCatalog,
    customers: int,
    utilisation: float = 0.8,
    replicas: int = 1,
    traffic: Traffic | None = None,
    throughputs: dict[str, Throughput] | None = None,
    slices: SliceCatalog | None = None,
) -> CustomerPlan:
    """One endpoint per kind, each sized for `customers` customers; `throughputs` is what one
    instance of this type serves per kind, for the kinds `traffic` gives a peak for."""
    kinds = [
        plan_kind(
            footprint,
            instance,
            catalog,
            customers,
            utilisation,
            replicas,
            peak_rps=traffic.peak_rps(footprint.kind, customers) if traffic else None,
            throughput=(throughputs or {}).get(footprint.kind),
            slices=slices,
        )
        for footprint in footprints
    ]
    cluster = slices.cluster_monthly if slices is not None else 0.0
    return CustomerPlan(instance.name, customers, utilisation, replicas, kinds, cluster)
