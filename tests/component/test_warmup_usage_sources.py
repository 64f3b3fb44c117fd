"""Where the warm-up's figures come from: the local service's description, AWS, or settings."""

from __future__ import annotations

import datetime as dt
from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber

from mme_factory.settings import Settings, load_settings
from tasks.deployment.warmup import cloudwatch_usage, usage_source
from tasks.deployment.warmup.cloudwatch_usage import instance_count, metric_queries, metric_values
from tasks.deployment.warmup.local_usage import is_local_service, usage_from_description
from test_support.servers import free_port

MIB = 2**20
ENDPOINT = "prod-mme-classifier"


def description(**extra: Any) -> dict[str, Any]:
    return {
        "endpoint": "dev-mme-classifier",
        "budget_bytes": 1000 * MIB,
        "memory_bytes": 450 * MIB,
        "target_models": {
            "a/classifier/v1.tar.gz": {
                "footprint_bytes": 200 * MIB,
                "loaded": True,
                "invocations_last_hour": 4,
                "last_invoked_unix": 1_700_000_000.0,
            },
            "b/classifier/v1.tar.gz": {
                "footprint_bytes": 200 * MIB,
                "loaded": False,
                "invocations_last_hour": 0,
                "last_invoked_unix": None,
            },
        },
        **extra,
    }


def test_the_local_description_gives_budget_reserve_and_per_model_usage() -> None:
    usage = usage_from_description("dev-mme-classifier", description())
    assert usage is not None
    assert (usage.budget_bytes, usage.source, usage.instances) == (1000 * MIB, "mme_local", 1)
    # 450 MiB in use, 200 of it the loaded model's: the server holds 250 before any model
    assert usage.reserved_bytes == 250 * MIB
    assert usage.capacity_bytes == 750 * MIB
    a = usage.model("a/classifier/v1.tar.gz")
    assert (a.loaded, a.busy, a.invocations_last_hour) == (True, True, 4)
    assert usage.model("never/seen/v1.tar.gz").footprint_bytes == 0


def test_a_description_without_per_model_usage_is_no_source() -> None:
    older = {k: v for k, v in description().items() if k != "target_models"}
    assert usage_from_description("dev-mme-classifier", older) is None


def settings_with(**environ: str) -> Settings:
    return load_settings(environ={f"MME_FACTORY_{k.upper()}": v for k, v in environ.items()})


@pytest.mark.parametrize(
    ("url", "local"),
    [
        ("http://127.0.0.1:8780", True),
        ("http://localhost:9000", True),
        ("https://runtime.sagemaker.us-east-1.amazonaws.com", False),
        ("http://10.0.0.5:8780", False),
    ],
)
def test_only_an_endpoint_on_this_machine_is_asked_for_mme_locals_route(
    url: str, local: bool
) -> None:
    assert is_local_service(url, settings_with()) is local


def test_a_local_url_without_the_route_falls_back_to_the_settings() -> None:
    nothing_listens = f"http://127.0.0.1:{free_port()}"
    settings = settings_with(endpoints__sagemaker_endpoint_url=nothing_listens)
    usage = usage_source.endpoint_usage(settings, "dev-mme-classifier")
    assert usage.source == "settings"
    assert usage.budget_bytes == settings.memory.budget_bytes
    assert "registration order" in usage.note


def test_no_endpoint_url_means_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    asked = []
    monkeypatch.setattr(usage_source, "cloudwatch_usage", lambda s, e: asked.append(e) or "aws")
    settings = settings_with(endpoints__sagemaker_endpoint_url="null")
    assert usage_source.endpoint_usage(settings, ENDPOINT) == "aws"
    assert asked == [ENDPOINT]


def test_cloudwatch_values_are_summed_for_sums_and_newest_otherwise() -> None:
    response = {
        "MetricDataResults": [
            {"Id": "invocations", "Values": [120.0, 30.0]},
            {"Id": "loaded_models", "Values": [12.0, 9.0]},
            {"Id": "memory_utilization", "Values": []},
        ]
    }
    assert metric_values(response) == {"invocations": 150.0, "loaded_models": 12.0}


def test_the_current_instance_count_is_the_variants() -> None:
    described = {
        "ProductionVariants": [
            {"VariantName": "Canary", "CurrentInstanceCount": 1},
            {"VariantName": "AllTraffic", "CurrentInstanceCount": 3},
        ]
    }
    assert instance_count(described, "AllTraffic") == 3
    assert instance_count({"ProductionVariants": []}, "AllTraffic") is None


def stubbed(service: str) -> tuple[Any, Stubber]:
    client = boto3.client(
        service,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    return client, Stubber(client)


def aws_settings() -> Settings:
    return settings_with(
        endpoints__sagemaker_endpoint_url="null",
        memory__instance_memory="16GiB",
        memory__budget="12GiB",
    )


def test_aws_usage_from_describe_endpoint_and_cloudwatch(monkeypatch: pytest.MonkeyPatch) -> None:
    sagemaker, sagemaker_stub = stubbed("sagemaker")
    cloudwatch, cloudwatch_stub = stubbed("cloudwatch")
    now = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC)
    sagemaker_stub.add_response(
        "describe_endpoint",
        {
            "EndpointName": ENDPOINT,
            "EndpointArn": f"arn:aws:sagemaker:us-east-1:000000000000:endpoint/{ENDPOINT}",
            "EndpointConfigName": "config",
            "EndpointStatus": "InService",
            "CreationTime": now,
            "LastModifiedTime": now,
            "ProductionVariants": [{"VariantName": "AllTraffic", "CurrentInstanceCount": 2}],
        },
        {"EndpointName": ENDPOINT},
    )
    cloudwatch_stub.add_response(
        "get_metric_data",
        {
            "MetricDataResults": [
                {"Id": "invocations", "Values": [900.0]},
                {"Id": "loaded_models", "Values": [8.0]},
                {"Id": "memory_utilization", "Values": [50.0]},
            ]
        },
        {
            "MetricDataQueries": metric_queries(ENDPOINT, "AllTraffic"),
            "StartTime": now - dt.timedelta(hours=1),
            "EndTime": now,
        },
    )
    monkeypatch.setattr(cloudwatch_usage, "sagemaker_client", lambda s: sagemaker)
    monkeypatch.setattr(cloudwatch_usage, "cloudwatch_client", lambda s: cloudwatch)
    with sagemaker_stub, cloudwatch_stub:
        usage = cloudwatch_usage.cloudwatch_usage(aws_settings(), ENDPOINT, now=now)
    assert (usage.source, usage.instances, usage.budget_bytes) == ("cloudwatch", 2, 12 * 1024**3)
    # 50 % of 16 GiB over 8 loaded models
    assert usage.mean_footprint_bytes == 1024**3
    assert usage.models == {}
    assert "no per-TargetModel traffic" in usage.note
    assert "900 invocations in the last hour" in usage.note


def test_aws_usage_without_metrics_or_endpoint_keeps_the_settings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sagemaker, sagemaker_stub = stubbed("sagemaker")
    cloudwatch, cloudwatch_stub = stubbed("cloudwatch")
    sagemaker_stub.add_client_error("describe_endpoint", "ValidationException", "not found")
    cloudwatch_stub.add_client_error("get_metric_data", "AccessDenied", "no cloudwatch:Get*")
    monkeypatch.setattr(cloudwatch_usage, "sagemaker_client", lambda s: sagemaker)
    monkeypatch.setattr(cloudwatch_usage, "cloudwatch_client", lambda s: cloudwatch)
    with sagemaker_stub, cloudwatch_stub:
        usage = cloudwatch_usage.cloudwatch_usage(aws_settings(), ENDPOINT)
    assert (usage.instances, usage.mean_footprint_bytes) == (1, 0)
    assert "DescribeEndpoint failed" in usage.note
    assert "AccessDenied" in usage.note
    assert "footprints from tarball sizes" in usage.note


def test_metric_queries_are_valid_get_metric_data_requests() -> None:
    cloudwatch, stub = stubbed("cloudwatch")
    stub.add_response(
        "get_metric_data",
        {"MetricDataResults": []},
        {"MetricDataQueries": ANY, "StartTime": ANY, "EndTime": ANY},
    )
    with stub:
        cloudwatch.get_metric_data(
            MetricDataQueries=metric_queries(ENDPOINT, "AllTraffic"),
            StartTime=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
            EndTime=dt.datetime(2026, 1, 1, 1, tzinfo=dt.UTC),
        )
    stub.assert_no_pending_responses()
