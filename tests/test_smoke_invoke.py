"""The smoke test's InvokeEndpoint call rides out an endpoint that is briefly unreachable."""

from __future__ import annotations

import io
import json
import time
from typing import Any

import pytest
from botocore.exceptions import EndpointConnectionError

from tasks.deployment.smoke_inference import SmokeTestFailed, invoke

ANSWER = {"outputs": [{"name": "label", "datatype": "BYTES", "shape": [1, 1], "data": ["x"]}]}


class FlakyEndpoint:
    """Refuses connections `failures` times, then answers."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls = 0

    def invoke_endpoint(self, **_: Any) -> dict[str, Any]:
        self.calls += 1
        if self.calls <= self.failures:
            raise EndpointConnectionError(endpoint_url="http://127.0.0.1:1/invocations")
        return {"Body": io.BytesIO(json.dumps(ANSWER).encode())}


@pytest.fixture(autouse=True)
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(time, "sleep", lambda _: None)


def test_a_refused_connection_is_retried_like_a_503() -> None:
    endpoint = FlakyEndpoint(failures=2)
    outputs, _ = invoke(endpoint, "dev-mme-classifier", "acme/classifier/v1.tar.gz", b"{}", 4)
    assert outputs["label"][0, 0] == "x"
    assert endpoint.calls == 3


def test_an_endpoint_unreachable_past_the_retries_fails_the_smoke_test_clearly() -> None:
    with pytest.raises(SmokeTestFailed, match=r"acme/classifier/v1\.tar\.gz: unreachable"):
        invoke(FlakyEndpoint(failures=9), "dev-mme-classifier", "acme/classifier/v1.tar.gz", b"", 2)
