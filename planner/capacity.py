"""How many TargetModels fit on an instance, how many instances N customers need, and the cost.

Pure arithmetic over footprints. A TargetModel's footprint is the memory it holds while
loaded. On a GPU instance it is counted against GPU memory (where the weights and their
activations live); on a CPU instance against host memory. On GPU instances a Python-backend
model also holds host memory for its stub process and CUDA context; give that as
`host_overhead_mib` to count it against host memory as well. What every instance holds before
any model (the OS, the server and its CUDA context) is `reserved_mib` of the footprint's memory
and `reserved_host_mib` of host memory on GPU instances; it comes out of the utilised share.

The single-model baseline is what the platform replaces: one endpoint per customer model
(an embedding model's two encoders share one), each on the same instance type.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from mme_factory.capacity import instances_needed, models_per_instance
from mme_factory.errors import MmeFactoryError
from planner.instance_catalog import InstanceCatalog, InstanceType


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
    bound_by: str
    instances: int
    mme_monthly: float
    single_model_endpoints: int
    single_model_monthly: float

    @property
    def saving(self) -> float:
        return 1 - self.mme_monthly / self.single_model_monthly

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "saving": round(self.saving, 4)}


def plan_kind(
    footprint: KindFootprint,
    instance: InstanceType,
    catalog: InstanceCatalog,
    customers: int,
    utilisation: float = 0.8,
    replicas: int = 1,
) -> KindPlan:
    """Instances for `customers` on one MME of `instance`, each model loaded on `replicas`."""
    if customers < 1 or replicas < 1:
        raise CapacityError("customers and replicas must be at least 1")
    fit = targets_per_instance(instance, footprint, utilisation)
    target_models = customers * footprint.targets_per_customer
    instances = instances_needed(target_models, fit.targets_per_instance, replicas)
    single_instances = customers * replicas
    return KindPlan(
        kind=footprint.kind,
        instance_type=instance.name,
        customers=customers,
        target_models=target_models,
        targets_per_instance=fit.targets_per_instance,
        customers_per_instance=fit.targets_per_instance // footprint.targets_per_customer,
        bound_by=fit.bound_by,
        instances=instances,
        mme_monthly=catalog.monthly_price(instance, instances),
        single_model_endpoints=customers,
        single_model_monthly=catalog.monthly_price(instance, single_instances),
    )


@dataclass(frozen=True)
class CustomerPlan:
    instance_type: str
    customers: int
    utilisation: float
    replicas: int
    kinds: list[KindPlan]

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

    def to_dict(self) -> dict[str, Any]:
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
        }


def plan_customers(
    footprints: list[KindFootprint],
    instance: InstanceType,
    catalog: InstanceCatalog,
    customers: int,
    utilisation: float = 0.8,
    replicas: int = 1,
) -> CustomerPlan:
    """One endpoint per kind, each sized for `customers` customers."""
    kinds = [
        plan_kind(footprint, instance, catalog, customers, utilisation, replicas)
        for footprint in footprints
    ]
    return CustomerPlan(instance.name, customers, utilisation, replicas, kinds)
