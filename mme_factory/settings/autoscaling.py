"""Autoscaling of the multi-model endpoints, applied at registration."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from mme_factory.settings.section import SettingsSection


class ScalingPolicy(SettingsSection):
    # invocations: SageMakerVariantInvocationsPerInstance; gpu_memory / memory: the endpoint's
    # GPUMemoryUtilization / MemoryUtilization in /aws/sagemaker/Endpoints (percent).
    metric: Literal["invocations", "gpu_memory", "memory"] = "invocations"
    target: float = Field(225.0, gt=0)
    min_instances: int = Field(1, ge=1)
    max_instances: int = Field(4, ge=1)
    scale_in_cooldown_s: int = Field(600, ge=0)
    scale_out_cooldown_s: int = Field(300, ge=0)

    @model_validator(mode="after")
    def _bounds(self) -> ScalingPolicy:
        if self.max_instances < self.min_instances:
            raise ValueError("max_instances is below min_instances")
        if self.metric != "invocations" and self.target > 100:
            raise ValueError(f"a {self.metric} target is a percentage (0-100)")
        return self


class AutoscalingSettings(SettingsSection):
    enabled: bool = False  # the embedded default has no Application Auto Scaling to talk to
    endpoint_url: str | None = None
    policies: dict[str, ScalingPolicy] = Field(
        default_factory=lambda: {
            "embedding": ScalingPolicy(metric="gpu_memory", target=80.0),
            "classifier": ScalingPolicy(metric="gpu_memory", target=80.0),
            "autocomplete": ScalingPolicy(metric="invocations", target=225.0),
        }
    )
