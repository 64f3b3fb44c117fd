"""An AWS endpoint's usage: its instance count from DescribeEndpoint, its load from CloudWatch.

What AWS gives and what it does not: a multi-model endpoint's CloudWatch metrics are per
endpoint and variant, never per TargetModel (`Invocations`, `LoadedModelCount`,
`MemoryUtilization`, the model-loading times). So there is no per-TargetModel traffic to order
the warm-up by (it keeps registration order) and no per-TargetModel footprint; the mean memory
per loaded model, `MemoryUtilization` x instance memory / `LoadedModelCount`, stands in for the
footprints of every model on the endpoint (an upper bound: it includes what the server holds
before any model). The model-cache budget per instance is the settings' `memory.*`.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from mme_factory.aws_clients import cloudwatch_client, sagemaker_client
from mme_factory.settings import Settings
from tasks.deployment.warmup.endpoint_usage import EndpointUsage

HOUR_S = 3600
# (query id, namespace, metric, statistic); dimensions EndpointName and VariantName.
METRICS = (
    ("invocations", "AWS/SageMaker", "Invocations", "Sum"),
    ("loaded_models", "AWS/SageMaker", "LoadedModelCount", "Average"),  # per instance
    ("memory_utilization", "/aws/sagemaker/Endpoints", "MemoryUtilization", "Average"),  # %
)


def metric_queries(endpoint: str, variant: str) -> list[dict[str, Any]]:
    """GetMetricData queries for the last hour of `endpoint`'s variant, one period each."""
    dimensions = [
        {"Name": "EndpointName", "Value": endpoint},
        {"Name": "VariantName", "Value": variant},
    ]
    return [
        {
            "Id": query_id,
            "MetricStat": {
                "Metric": {"Namespace": namespace, "MetricName": name, "Dimensions": dimensions},
                "Period": HOUR_S,
                "Stat": stat,
            },
        }
        for query_id, namespace, name, stat in METRICS
    ]


def metric_values(response: dict[str, Any]) -> dict[str, float]:
    """Per query id: the sum of its datapoints for a Sum, else the newest datapoint."""
    values: dict[str, float] = {}
    stats = {query_id: stat for query_id, _, _, stat in METRICS}
    for result in response.get("MetricDataResults", []):
        points = result.get("Values") or []
        if points and result.get("Id") in stats:
            values[result["Id"]] = sum(points) if stats[result["Id"]] == "Sum" else points[0]
    return values


def instance_count(described: dict[str, Any], variant: str) -> int | None:
    """The variant's current instance count from a DescribeEndpoint answer."""
    for entry in described.get("ProductionVariants", []):
        if entry.get("VariantName") == variant and entry.get("CurrentInstanceCount"):
            return int(entry["CurrentInstanceCount"])
    return None


def usage_from_cloudwatch(
    endpoint: str,
    budget_bytes: int,
    instance_memory_bytes: int,
    instances: int,
    values: dict[str, float],
    notes: list[str],
) -> EndpointUsage:
    """The endpoint's usage from its metric values (see `metric_values`)."""
    loaded, utilization = values.get("loaded_models", 0.0), values.get("memory_utilization", 0.0)
    mean_footprint = 0
    if loaded >= 1 and utilization > 0:
        mean_footprint = int(utilization / 100 * instance_memory_bytes / loaded)
    notes = [
        *notes,
        "CloudWatch has no per-TargetModel traffic: registration order",
        f"{values.get('invocations', 0):.0f} invocations in the last hour, warm-up included",
    ]
    if not mean_footprint:
        notes.append("no LoadedModelCount and MemoryUtilization: footprints from tarball sizes")
    return EndpointUsage(
        endpoint=endpoint,
        source="cloudwatch",
        budget_bytes=budget_bytes,
        instances=instances,
        mean_footprint_bytes=mean_footprint,
        note="; ".join(notes),
    )


def cloudwatch_usage(
    settings: Settings, endpoint: str, now: dt.datetime | None = None
) -> EndpointUsage:
    """Ask DescribeEndpoint and CloudWatch; what either cannot answer is left out, noted."""
    variant, notes = settings.sagemaker.variant_name, []
    instances = settings.sagemaker.initial_instance_count
    try:
        described = sagemaker_client(settings).describe_endpoint(EndpointName=endpoint)
        instances = instance_count(described, variant) or instances
    except (BotoCoreError, ClientError) as error:
        notes.append(f"DescribeEndpoint failed ({error}): {instances} instance(s) from settings")
    end = now or dt.datetime.now(dt.UTC)
    values: dict[str, float] = {}
    try:
        values = metric_values(
            cloudwatch_client(settings).get_metric_data(
                MetricDataQueries=metric_queries(endpoint, variant),
                StartTime=end - dt.timedelta(seconds=HOUR_S),
                EndTime=end,
            )
        )
    except (BotoCoreError, ClientError) as error:
        notes.append(f"CloudWatch GetMetricData failed ({error})")
    return usage_from_cloudwatch(
        endpoint,
        settings.memory.budget_bytes,
        int(settings.memory.instance_memory),
        instances,
        values,
        notes,
    )
