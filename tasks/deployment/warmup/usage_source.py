"""Where an endpoint's usage comes from, decided by where the endpoints run.

- the local service (an endpoint URL on this machine that answers mme_local's description
  route): measured footprints and per-TargetModel customer traffic (`local_usage.py`);
- AWS (no endpoint URL): DescribeEndpoint and CloudWatch (`cloudwatch_usage.py`), which have no
  per-TargetModel figures;
- anything else: the settings' budget and nothing measured, so footprints are estimated and
  the order is registration order.
"""

from __future__ import annotations

from mme_factory.settings import Settings
from tasks.deployment.warmup.cloudwatch_usage import cloudwatch_usage
from tasks.deployment.warmup.endpoint_usage import EndpointUsage, settings_usage
from tasks.deployment.warmup.local_usage import (
    is_local_service,
    local_description,
    usage_from_description,
)


def endpoint_usage(settings: Settings, endpoint: str) -> EndpointUsage:
    """Where `endpoint` runs decides the source: the local service, AWS, or the settings."""
    url = settings.endpoints.sagemaker_endpoint_url
    if url is None:
        return cloudwatch_usage(settings, endpoint)
    if is_local_service(url, settings):
        description = local_description(url, endpoint)
        usage = usage_from_description(endpoint, description) if description else None
        if usage is not None:
            return usage
    return settings_usage(
        settings,
        endpoint,
        f"{url} describes no per-model usage: footprints estimated, registration order",
    )
