"""Which of an endpoint's TargetModels the warm-up calls: what fits its memory, busiest first.

A warm-up call to a model that is not loaded loads it, and the endpoint then evicts the least
recently used models to stay within its memory. Warming more than fits therefore evicts models
customers are using, and each pass reloads what the previous one evicted. So per endpoint:

1. every TargetModel gets a footprint: measured where the endpoint measured it; else the
   endpoint's mean memory per loaded model where that is all the source has (AWS); else its
   tarball size times a factor: the largest footprint/tarball ratio measured on the endpoint
   (one model kind per endpoint, so its models are alike), or TARBALL_FOOTPRINT_FACTOR when
   none was measured;
2. loaded models that served customer traffic in the last hour are kept first and counted
   against capacity, whatever follows;
3. the others in order of recent traffic (invocations in the last hour, then the latest call,
   then loaded before not loaded, then registration order) while they fit;
4. the rest are "over capacity": not called, and the endpoint's shortfall names the instance
   count that would hold them all (a kind is sized by its largest TargetModel).

When everything fits, every model is warmed, as before.
"""

from __future__ import annotations

from dataclasses import dataclass

from mme_factory.capacity import (
    FOOTPRINT_PER_TARBALL_BYTE,
    instances_needed,
    models_per_instance,
)
from mme_factory.manifest import RegisteredTarget
from tasks.deployment.warmup.endpoint_usage import EndpointUsage, ModelUsage

TARBALL_FOOTPRINT_FACTOR = FOOTPRINT_PER_TARBALL_BYTE
MIB = 2**20
NAMED_IN_MESSAGE = 5


@dataclass(frozen=True)
class PlannedModel:
    target: RegisteredTarget
    usage: ModelUsage
    footprint_bytes: int
    footprint_source: str  # "measured", "endpoint mean" or "tarball x <factor>"


def footprints(
    usage: EndpointUsage, targets: list[RegisteredTarget], tarball_bytes: dict[str, int]
) -> list[PlannedModel]:
    """Each target with its footprint (see the module docstring, step 1)."""
    ratios = [
        usage.model(t.target_model).footprint_bytes / tarball_bytes[t.target_model]
        for t in targets
        if usage.model(t.target_model).footprint_bytes > 0
        and tarball_bytes.get(t.target_model, 0) > 0
    ]
    factor = max(ratios, default=TARBALL_FOOTPRINT_FACTOR)
    planned = []
    for target in targets:
        model = usage.model(target.target_model)
        if model.footprint_bytes > 0:
            footprint, source = model.footprint_bytes, "measured"
        elif usage.mean_footprint_bytes > 0:
            footprint, source = usage.mean_footprint_bytes, "endpoint mean"
        else:
            footprint = int(tarball_bytes.get(target.target_model, 0) * factor)
            source = f"tarball x {factor:.1f}"
        planned.append(PlannedModel(target, model, max(1, footprint), source))
    return planned


def traffic_order(model: PlannedModel) -> tuple[int, float, bool]:
    """Busiest first: invocations in the last hour, the latest call, loaded before not."""
    usage = model.usage
    return (-usage.invocations_last_hour, -(usage.last_invoked_unix or 0.0), not usage.loaded)


@dataclass(frozen=True)
class EndpointPlan:
    usage: EndpointUsage
    warm: list[PlannedModel]  # loaded ones first, then the ones to load; busiest first in each
    over_capacity: list[PlannedModel]

    @property
    def endpoint(self) -> str:
        return self.usage.endpoint

    @property
    def models(self) -> list[PlannedModel]:
        return self.warm + self.over_capacity

    @property
    def largest_footprint_bytes(self) -> int:
        return max((m.footprint_bytes for m in self.models), default=1)

    @property
    def per_instance(self) -> int:
        """TargetModels of the largest footprint one instance holds."""
        return models_per_instance(self.usage.usable_per_instance, self.largest_footprint_bytes)

    @property
    def instances_needed(self) -> int | None:
        """Instances that hold every model; None when one alone does not fit an instance."""
        if self.per_instance < 1:
            return None
        return instances_needed(len(self.models), self.per_instance)

    def shortfall(self) -> str | None:
        """Why models were left out and the fix; None when everything fits."""
        if not self.over_capacity:
            return None
        usage, largest = self.usage, self.largest_footprint_bytes / MIB
        usable = (
            f"the {usage.usable_per_instance / MIB:,.0f} MiB an instance has for models "
            f"({usage.budget_bytes / MIB:,.0f} MiB budget less {usage.reserved_bytes / MIB:,.0f}"
            " MiB the server holds)"
        )
        names = [m.target.target_model for m in self.over_capacity]
        left_out = ", ".join(names[:NAMED_IN_MESSAGE]) + (
            f" and {len(names) - NAMED_IN_MESSAGE} more" if len(names) > NAMED_IN_MESSAGE else ""
        )
        over = f"{len(names)} over capacity, not warmed: {left_out}"
        needed = self.instances_needed
        if needed is None:
            return (
                f"{self.endpoint}: one TargetModel of {largest:,.0f} MiB does not fit in "
                f"{usable}; {over}. Give each instance more memory (memory.budget, "
                "memory.instance_memory, a larger instance type)."
            )
        return (
            f"{self.endpoint}: {len(self.models)} TargetModels need {needed} instances, it has "
            f"{usage.instances}: {self.per_instance} of up to {largest:,.0f} MiB fit in "
            f"{usable}; {over}. Run it on {needed} instances (autoscaling min_instances, "
            "sagemaker.initial_instance_count) or give each more memory (memory.budget, "
            "memory.instance_memory); `mme-factory plan` sizes it."
        )


def plan_endpoint(
    usage: EndpointUsage, targets: list[RegisteredTarget], tarball_bytes: dict[str, int]
) -> EndpointPlan:
    """The endpoint's `targets` (registration order) split into warm and over capacity."""
    planned = footprints(usage, targets, tarball_bytes)
    # sorted() is stable: equal traffic keeps registration order.
    kept = sorted((m for m in planned if m.usage.loaded and m.usage.busy), key=traffic_order)
    rest = sorted((m for m in planned if not (m.usage.loaded and m.usage.busy)), key=traffic_order)
    used = sum(m.footprint_bytes for m in kept)
    warm, over = list(kept), []
    for model in rest:
        if used + model.footprint_bytes <= usage.capacity_bytes:
            warm.append(model)
            used += model.footprint_bytes
        else:
            over.append(model)
    # Touch what is loaded before loading more, so what the loads evict is never in the plan.
    warm.sort(key=lambda m: not m.usage.loaded)
    return EndpointPlan(usage, warm, over)
