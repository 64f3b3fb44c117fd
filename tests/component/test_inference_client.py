"""The inference client against a real mme_local + Triton serving a customer's tiny models."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

from mme_factory.aws_clients import sagemaker_runtime_client
from mme_factory.inference_client import (
    InferenceClient,
    InvocationDeadlineExceeded,
    InvocationRejected,
    RetryPolicy,
)
from mme_factory.protocol import BINARY_CONTENT_TYPE, encode_request
from mme_factory.settings import load_settings
from mme_factory.store import LocalStore
from tasks.deployment.publish.promote import promote, rollback
from test_support.faulty_front import RESET, AwsFault, FaultyFront
from test_support.mme_local_harness import ServiceProcess
from test_support.served_customer import create_kind_endpoints, publish_version
from test_support.tiny_exports import EMBEDDING_DIM, LABELS
from test_support.tiny_stack import tiny_stack

pytestmark = pytest.mark.integration
ENV = "ic"
TEXTS = ["where is my parcel?", "please refund the second payment"]
FAST_RETRIES = RetryPolicy(deadline_s=60, max_retries=50, backoff_base_s=0.1, backoff_cap_s=0.5)


@dataclass
class Served:
    environ: dict[str, str]
    service: ServiceProcess
    store: LocalStore
    versions: dict[int, dict[str, dict[str, Any]]]  # manifest entries of each version

    def client(
        self, policy: RetryPolicy = FAST_RETRIES, runtime_url: str | None = None, **options: Any
    ) -> InferenceClient:
        environ = dict(self.environ)
        if runtime_url is not None:
            environ["MME_FACTORY_ENDPOINTS__SAGEMAKER_RUNTIME_ENDPOINT_URL"] = runtime_url
        runtime = sagemaker_runtime_client(load_settings(environ=environ), retries=0)
        return InferenceClient(runtime, self.store, policy, **options)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """acme's v1 promoted, v2 uploaded; a cold load answers 429 after 0.3 s, as AWS after 60."""
    root = tmp_path_factory.mktemp("inference_client")
    environ, service = tiny_stack(root, ENV, {"MME_FACTORY_MME_LOCAL__MODEL_LOAD_WAIT_S": "0.3"})
    store = LocalStore(root / "store")
    versions = {v: publish_version(store, root, ENV, "acme", v, seed=10 * v) for v in (1, 2)}
    promote(store, "acme", versions[1])
    service.start(timeout_s=60)
    try:
        create_kind_endpoints(service.url, ENV)
        yield Served(environ, service, store, versions)
    finally:
        service.stop()


def client_errors(served: Served) -> float:
    return sum(v for k, v in served.service.metrics().items() if "Invocation4XXErrors" in k)


def test_a_cold_load_answered_429_is_retried_until_the_model_is_loaded(served: Served) -> None:
    errors_before = client_errors(served)
    embeddings = served.client().embed("acme", TEXTS, role="article")
    assert embeddings.attempts >= 2  # the first attempts met ModelNotReadyException
    assert client_errors(served) - errors_before == embeddings.attempts - 1
    assert embeddings.target.target_model == "acme/embedding-article/v1.tar.gz"
    assert embeddings.vectors.shape == (2, EMBEDDING_DIM)


def test_embed_classify_and_complete_give_typed_results(served: Served) -> None:
    client = served.client()
    embeddings = client.embed("acme", TEXTS, role="query")
    assert embeddings.vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(embeddings.vectors, axis=1), 1.0, atol=1e-4)
    assert embeddings.target.role == "query" and embeddings.target.version == 1
    assert embeddings.latency_ms > 0 and embeddings.attempts >= 1
    classified = client.classify("acme", TEXTS)
    assert [c.label in LABELS for c in classified] == [True, True]
    assert all(1 / len(LABELS) <= c.probability <= 1 for c in classified)
    (completion,) = client.complete("acme", ["Customer: hello\nAgent:"], max_new_tokens=4)
    assert isinstance(completion.text, str) and completion.text.strip()
    assert completion.finish_reason in {"length", "stop", "eos"}
    assert completion.target.target_model == "acme/autocomplete/v1.tar.gz"


def test_answers_come_back_binary_and_equal_the_json_path(served: Served) -> None:
    query = served.versions[1]["embedding"]
    endpoint, target = query["endpoint"], query["targets"]["query"]
    binary, as_json = served.client(), served.client(binary=False)
    request = encode_request({"text": TEXTS})
    answer = served.client().runtime.invoke_endpoint(
        EndpointName=endpoint,
        TargetModel=target,
        ContentType=request.content_type,
        Body=request.body,
    )
    assert request.content_type.startswith(BINARY_CONTENT_TYPE)
    assert answer["ContentType"].startswith(BINARY_CONTENT_TYPE)
    cases = [
        ("embedding", endpoint, target, {"text": TEXTS}, ["embedding"]),
        (
            "classifier",
            served.versions[1]["classifier"]["endpoint"],
            "acme/classifier/v1.tar.gz",
            {"text": TEXTS},
            ["label", "probability", "probabilities"],
        ),
        (
            "autocomplete",
            served.versions[1]["autocomplete"]["endpoint"],
            "acme/autocomplete/v1.tar.gz",
            {"text": ["Customer: hi\nAgent:"], "max_new_tokens": [3]},
            ["completion", "finish_reason"],
        ),
    ]
    for kind, endpoint, target, inputs, outputs in cases:
        raw = binary.invoke_target(endpoint, target, kind, inputs)
        plain = as_json.invoke_target(endpoint, target, kind, inputs, outputs=outputs)
        assert sorted(raw.outputs) == sorted(outputs)
        for name in outputs:
            assert raw.outputs[name].dtype == plain.outputs[name].dtype, (kind, name)
            np.testing.assert_array_equal(raw.outputs[name], plain.outputs[name])


def test_retryable_errors_past_the_deadline_give_up_with_a_clear_error(served: Served) -> None:
    policy = RetryPolicy(deadline_s=0.8, max_retries=50, backoff_base_s=0.05, backoff_cap_s=0.1)
    target = served.versions[2]["embedding"]["targets"]["query"]  # never loaded: still loading
    started = time.monotonic()
    with pytest.raises(InvocationDeadlineExceeded) as raised:
        served.client(policy).invoke_target(
            f"{ENV}-mme-embedding", target, "embedding", {"text": TEXTS}
        )
    assert time.monotonic() - started < 0.8 + 2.0  # one attempt may be in flight at the deadline
    error = raised.value
    assert error.attempts >= 2 and error.code == "ModelNotReadyException" and error.status == 429
    message = str(error)
    assert f"{ENV}-mme-embedding" in message and target in message
    assert f"after {error.attempts} attempts" in message and "invoke_deadline_s" in message


def _rejected_classifier_call(
    served: Served, endpoint: str, target: str
) -> pytest.ExceptionInfo[InvocationRejected]:
    """What a classifier call of `target` on `endpoint` is rejected with; it must be."""
    with pytest.raises(InvocationRejected) as raised:
        served.client().invoke_target(endpoint, target, "classifier", {"text": TEXTS})
    return raised


def test_a_validation_error_fails_at_once(served: Served) -> None:
    raised = _rejected_classifier_call(served, f"{ENV}-mme-missing", "acme/classifier/v1.tar.gz")
    assert raised.value.attempts == 1
    assert raised.value.status == 400 and raised.value.code == "ValidationError"
    assert f"{ENV}-mme-missing" in str(raised.value) and "not found" in str(raised.value)


def test_a_model_error_fails_at_once_with_the_containers_status(served: Served) -> None:
    raised = _rejected_classifier_call(served, f"{ENV}-mme-classifier", "acme/classifier/v9.tar.gz")
    assert raised.value.attempts == 1
    assert raised.value.status == 424 and raised.value.code == "ModelError"
    assert "acme/classifier/v9.tar.gz" in str(raised.value)


def test_throttling_unavailable_and_a_reset_connection_are_retried(served: Served) -> None:
    faults = [
        AwsFault(400, "ThrottlingException", "Rate exceeded"),
        AwsFault(503, "ServiceUnavailable", "try again"),
        RESET,
    ]
    with FaultyFront(served.service.url, faults) as front:
        classified = served.client(runtime_url=front.url).classify("acme", TEXTS[:1])
    assert front.requests == 4 and classified[0].attempts == 4
    assert classified[0].label in LABELS


def test_a_rollback_is_seen_within_the_refresh_interval(served: Served) -> None:
    client = served.client(refresh_s=0.5)
    promote(served.store, "acme", {"classifier": served.versions[2]["classifier"]})
    time.sleep(0.6)
    assert client.classify("acme", TEXTS)[0].target.target_model == "acme/classifier/v2.tar.gz"
    rollback(served.store, "acme", "classifier")
    rolled_back = time.monotonic()
    while client.target("acme", "classifier").version != 1:
        assert time.monotonic() - rolled_back < 0.5 + 0.5, "the rollback was not seen in time"
        time.sleep(0.05)
    answer = client.classify("acme", TEXTS)[0]
    assert answer.target.target_model == "acme/classifier/v1.tar.gz" and answer.label in LABELS
