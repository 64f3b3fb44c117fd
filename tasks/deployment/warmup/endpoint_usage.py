"""What an endpoint can hold and what its TargetModels use, as the warm-up plans from it.

`usage_source.endpoint_usage` picks where the figures come from.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mme_factory.settings import Settings


@dataclass(frozen=True)
class ModelUsage:
    """One TargetModel as its endpoint saw it; `footprint_bytes` 0 when never measured."""

    footprint_bytes: int = 0
    loaded: bool = False
    invocations_last_hour: int = 0
    last_invoked_unix: float | None = None

    @property
    def busy(self) -> bool:
        """Served customer traffic in the last hour."""
        return self.invocations_last_hour > 0


@dataclass(frozen=True)
class EndpointUsage:
    """Per instance: the model-cache budget and what the server holds before any model."""

    endpoint: str
    source: str  # "mme_local", "cloudwatch" or "settings"
    budget_bytes: int
    reserved_bytes: int = 0
    instances: int = 1
    models: dict[str, ModelUsage] = field(default_factory=dict)
    # Set where the source measures no footprint per TargetModel but one per loaded model.
    mean_footprint_bytes: int = 0
    note: str = ""  # what the source could not give

    @property
    def usable_per_instance(self) -> int:
        return max(0, self.budget_bytes - self.reserved_bytes)

    @property
    def capacity_bytes(self) -> int:
        return self.instances * self.usable_per_instance

    def model(self, target_model: str) -> ModelUsage:
        return self.models.get(target_model, ModelUsage())


def settings_usage(settings: Settings, endpoint: str, note: str) -> EndpointUsage:
    """The settings' budget on the configured instance count; nothing measured."""
    return EndpointUsage(
        endpoint=endpoint,
        source="settings",
        budget_bytes=settings.memory.budget_bytes,
        instances=settings.sagemaker.initial_instance_count,
        note=note,
    )
