"""Keeping models warm: each endpoint's usage, the plan of what fits, and the warming calls."""

from tasks.deployment.warmup.endpoint_usage import EndpointUsage, ModelUsage
from tasks.deployment.warmup.usage_source import endpoint_usage
from tasks.deployment.warmup.warmup_capacity import EndpointPlan, PlannedModel, plan_endpoint
from tasks.deployment.warmup.warmup_models import (
    ModelState,
    WarmupResult,
    WarmupStatus,
    warm_models,
    warm_models_task,
)

__all__ = [
    "EndpointPlan",
    "EndpointUsage",
    "ModelState",
    "ModelUsage",
    "PlannedModel",
    "WarmupResult",
    "WarmupStatus",
    "endpoint_usage",
    "plan_endpoint",
    "warm_models",
    "warm_models_task",
]
