"""Autoscaling registration against moto's Application Auto Scaling server."""

from __future__ import annotations

import json

import pytest

from mme_factory.aws_clients import autoscaling_client
from mme_factory.errors import SettingsError
from mme_factory.settings import load_settings
from tasks.deployment.publish.autoscaling import configure_autoscaling, policy_configuration
from test_support.moto_aws import AUTOSCALING, moto_settings

pytestmark = pytest.mark.integration


@pytest.fixture
def settings(moto_server, tmp_path, monkeypatch):
    return moto_settings(
        monkeypatch, moto_server.url, tmp_path, AUTOSCALING, AUTOSCALING__ENABLED="true"
    )


def test_invocations_policy_for_autocomplete_is_idempotent(settings):
    client = autoscaling_client(settings)
    for _ in range(2):
        name = configure_autoscaling(client, settings, "autocomplete", "as-mme-autocomplete")
    resource = "endpoint/as-mme-autocomplete/variant/AllTraffic"
    targets = client.describe_scalable_targets(
        ServiceNamespace="sagemaker", ResourceIds=[resource]
    )["ScalableTargets"]
    assert len(targets) == 1
    assert (targets[0]["MinCapacity"], targets[0]["MaxCapacity"]) == (1, 4)
    policies = client.describe_scaling_policies(ServiceNamespace="sagemaker", ResourceId=resource)[
        "ScalingPolicies"
    ]
    assert [p["PolicyName"] for p in policies] == [name]
    tracking = policies[0]["TargetTrackingScalingPolicyConfiguration"]
    assert tracking["TargetValue"] == 225.0
    assert tracking["PredefinedMetricSpecification"]["PredefinedMetricType"] == (
        "SageMakerVariantInvocationsPerInstance"
    )


def test_gpu_memory_policy_for_embeddings(settings):
    client = autoscaling_client(settings)
    configure_autoscaling(client, settings, "embedding", "as-mme-embedding")
    policies = client.describe_scaling_policies(
        ServiceNamespace="sagemaker", ResourceId="endpoint/as-mme-embedding/variant/AllTraffic"
    )["ScalingPolicies"]
    custom = policies[0]["TargetTrackingScalingPolicyConfiguration"]
    assert custom["TargetValue"] == 80.0
    assert custom["CustomizedMetricSpecification"]["MetricName"] == "GPUMemoryUtilization"
    assert custom["CustomizedMetricSpecification"]["Namespace"] == "/aws/sagemaker/Endpoints"


def test_policy_request_matches_the_botocore_model():
    from botocore.session import get_session

    shape = (
        get_session()
        .get_service_model("application-autoscaling")
        .shape_for("TargetTrackingScalingPolicyConfiguration")
    )
    settings = load_settings(environ={})
    for kind, policy in settings.autoscaling.policies.items():
        configuration = policy_configuration(policy, f"dev-mme-{kind}", "AllTraffic")
        assert set(configuration) <= set(shape.members)


@pytest.mark.parametrize(
    ("policy", "message"),
    [
        ({"metric": "gpu_memory", "target": 225}, "percentage"),
        ({"min_instances": 3, "max_instances": 2}, "below min_instances"),
        ({"metric": "cpu"}, "metric"),
    ],
)
def test_bad_policy_values_are_refused(tmp_path, policy, message):
    path = tmp_path / "settings.yaml"
    path.write_text(json.dumps({"autoscaling": {"policies": {"embedding": policy}}}))
    with pytest.raises(SettingsError, match=message):
        load_settings(path, environ={})
