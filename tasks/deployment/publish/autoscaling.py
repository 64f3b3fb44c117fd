"""Register an endpoint variant as a scalable target and attach its target-tracking policy.

Both calls overwrite what is there, so re-running registration is idempotent.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from mme_factory.errors import MmeFactoryError
from mme_factory.settings import Settings
from mme_factory.settings.autoscaling import ScalingPolicy

NAMESPACE = "sagemaker"
DIMENSION = "sagemaker:variant:DesiredInstanceCount"
CUSTOM_METRICS = {"gpu_memory": "GPUMemoryUtilization", "memory": "MemoryUtilization"}


class AutoscalingError(MmeFactoryError):
    """The scalable target or its policy could not be registered."""


def resource_id(endpoint: str, variant: str) -> str:
    return f"endpoint/{endpoint}/variant/{variant}"


def policy_configuration(policy: ScalingPolicy, endpoint: str, variant: str) -> dict[str, Any]:
    configuration: dict[str, Any] = {
        "TargetValue": policy.target,
        "ScaleInCooldown": policy.scale_in_cooldown_s,
        "ScaleOutCooldown": policy.scale_out_cooldown_s,
    }
    if policy.metric == "invocations":
        configuration["PredefinedMetricSpecification"] = {
            "PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"
        }
    else:
        configuration["CustomizedMetricSpecification"] = {
            "MetricName": CUSTOM_METRICS[policy.metric],
            "Namespace": "/aws/sagemaker/Endpoints",
            "Dimensions": [
                {"Name": "EndpointName", "Value": endpoint},
                {"Name": "VariantName", "Value": variant},
            ],
            "Statistic": "Average",
            "Unit": "Percent",
        }
    return configuration


def configure_autoscaling(client: Any, settings: Settings, kind: str, endpoint: str) -> str:
    """Scalable target plus target-tracking policy for the endpoint's variant; the policy name."""
    policy = settings.autoscaling.policies[kind]
    variant = settings.sagemaker.variant_name
    resource = resource_id(endpoint, variant)
    name = f"{endpoint}-{policy.metric}-target-tracking"
    try:
        client.register_scalable_target(
            ServiceNamespace=NAMESPACE,
            ResourceId=resource,
            ScalableDimension=DIMENSION,
            MinCapacity=policy.min_instances,
            MaxCapacity=policy.max_instances,
        )
        client.put_scaling_policy(
            PolicyName=name,
            ServiceNamespace=NAMESPACE,
            ResourceId=resource,
            ScalableDimension=DIMENSION,
            PolicyType="TargetTrackingScaling",
            TargetTrackingScalingPolicyConfiguration=policy_configuration(
                policy, endpoint, variant
            ),
        )
    except (ClientError, BotoCoreError) as error:
        raise AutoscalingError(f"autoscaling for {endpoint}: {error}") from None
    return name
