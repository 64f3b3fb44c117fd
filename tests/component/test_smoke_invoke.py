"""The smoke test's InvokeEndpoint call rides out an endpoint that is briefly unreachable.

A real loopback HTTP front answers for the endpoint: it starts late (connections refused until
then), or resets connections, then answers a Triton response.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from mme_factory.aws_clients import sagemaker_runtime_client
from mme_factory.inference_client import (
    InferenceClient,
    InvocationDeadlineExceeded,
    RetryPolicy,
)
from mme_factory.settings import Settings, load_settings
from mme_factory.store import LocalStore
from tasks.deployment.publish.register_mme import Registration
from tasks.deployment.publish.smoke_inference import SmokeTestFailed, invoke
from test_support.faulty_front import RESET, FaultyFront

ANSWER = {"outputs": [{"name": "label", "datatype": "BYTES", "shape": [1, 1], "data": ["x"]}]}
TARGET = "acme/classifier/v1.tar.gz"
POLICY = RetryPolicy(deadline_s=20, max_retries=50, backoff_base_s=0.1, backoff_cap_s=0.4)


def front() -> FaultyFront:
    return FaultyFront(None, answer=("application/json", json.dumps(ANSWER).encode()))


def client_of(url: str, tmp_path: Path, policy: RetryPolicy = POLICY) -> InferenceClient:
    settings: Settings = load_settings(
        environ={
            "MME_FACTORY_STATE_DIR": str(tmp_path / "state"),
            "MME_FACTORY_ENDPOINTS__SAGEMAKER_RUNTIME_ENDPOINT_URL": url,
        }
    )
    runtime = sagemaker_runtime_client(settings, retries=0)
    return InferenceClient(runtime, LocalStore(tmp_path / "store"), policy)


def registration() -> Registration:
    return Registration(
        customer="acme",
        kind="classifier",
        role=None,
        version=1,
        endpoint="dev-mme-classifier",
        target_model=TARGET,
        model_data_url="s3://bucket/mme/dev-mme-classifier/",
        sha256="0" * 64,
        size_bytes=1,
        code_version="v1",
        endpoint_created=False,
        uploaded=True,
    )


def test_a_refused_connection_is_retried_until_the_endpoint_listens(tmp_path: Path) -> None:
    late = front()
    starter = threading.Timer(1.0, late.start)
    starter.start()
    try:
        result = invoke(client_of(late.url, tmp_path), registration(), {"text": ["hi"]})
    finally:
        starter.join()
        late.stop()
    assert result.outputs["label"][0, 0] == b"x"
    assert result.attempts >= 2 and late.requests == 1


def test_a_reset_connection_is_retried_like_a_503(tmp_path: Path) -> None:
    with FaultyFront(None, [RESET, RESET], ("application/json", json.dumps(ANSWER).encode())) as f:
        result = invoke(client_of(f.url, tmp_path), registration(), {"text": ["hi"]})
    assert result.attempts == 3 and f.requests == 3


def test_an_endpoint_unreachable_past_the_deadline_fails_the_smoke_test_clearly(
    tmp_path: Path,
) -> None:
    never = front()  # never started: every connection is refused
    policy = RetryPolicy(deadline_s=1.0, max_retries=50, backoff_base_s=0.05, backoff_cap_s=0.2)
    with pytest.raises(
        SmokeTestFailed, match=r"acme/classifier/v1\.tar\.gz \(classifier\): gave up"
    ) as raised:
        invoke(client_of(never.url, tmp_path, policy), registration(), {"text": ["hi"]})
    cause = raised.value.__cause__
    assert isinstance(cause, InvocationDeadlineExceeded)
    assert cause.code == "EndpointConnectionError" and cause.attempts >= 2
