"""Call a customer's served models: resolve the TargetModel, encode, invoke with retries, read.

client = InferenceClient.from_settings(load_settings())
client.embed("acme", ["where is my parcel?"], role="query").vectors   # [1, dim] float32
client.classify("acme", ["where is my parcel?"])[0].label
client.complete("acme", ["Customer: hello\\nAgent:"], max_new_tokens=16)[0].text
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from mme_factory.aws_clients import sagemaker_runtime_client
from mme_factory.inference_client import results
from mme_factory.inference_client.errors import (
    InferenceFailed,
    InvocationDeadlineExceeded,
    InvocationRejected,
    UnreadableAnswer,
)
from mme_factory.inference_client.results import (
    Classification,
    Completion,
    Embeddings,
    InvocationResult,
)
from mme_factory.inference_client.retry_policy import (
    RetryPolicy,
    error_code,
    error_status,
    is_retryable,
)
from mme_factory.inference_client.targets import Target, TargetResolver
from mme_factory.protocol import UndecodableResponse, decode_response, encode_request
from mme_factory.settings import Settings
from mme_factory.store import ArtifactStore, open_store


class InferenceClient:
    """Thread-safe: one client may serve many threads (size `max_pool_connections` for them)."""

    def __init__(
        self,
        runtime: Any,
        store: ArtifactStore,
        policy: RetryPolicy | None = None,
        refresh_s: float = 2.0,
        *,
        binary: bool = True,
    ) -> None:
        """`runtime`: a boto3 `sagemaker-runtime` client, best without botocore's own retries."""
        self.runtime = runtime
        self.policy = policy or RetryPolicy()
        self.targets = TargetResolver(store, refresh_s)
        self.binary = binary

    @classmethod
    def from_settings(
        cls, settings: Settings, *, max_pool_connections: int = 10
    ) -> InferenceClient:
        sagemaker = settings.sagemaker
        return cls(
            sagemaker_runtime_client(
                settings, max_pool_connections=max_pool_connections, retries=0
            ),
            open_store(settings.store, settings),
            RetryPolicy.from_settings(sagemaker),
            sagemaker.manifest_refresh_s,
        )

    def target(self, customer: str, kind: str, role: str | None = None) -> Target:
        """The TargetModel serving the customer's `kind` (and `role`) now."""
        return self.targets.resolve(customer, kind, role)

    def embed(self, customer: str, texts: Sequence[str], role: str = "query") -> Embeddings:
        """Unit-length embeddings of `texts` by the customer's `role` encoder (query or article)."""
        target, result = self._invoke(customer, "embedding", role, {"text": list(texts)})
        return results.embeddings(result, target, len(texts))

    def classify(self, customer: str, texts: Sequence[str]) -> list[Classification]:
        """The customer's intent of each text, with its probability."""
        target, result = self._invoke(customer, "classifier", None, {"text": list(texts)})
        return results.classifications(result, target)

    def complete(
        self,
        customer: str,
        contexts: Sequence[str],
        max_new_tokens: int = 16,
    ) -> list[Completion]:
        """The customer's reply autocomplete of each conversation so far."""
        inputs: dict[str, list[Any]] = {
            "text": list(contexts),
            "max_new_tokens": [max_new_tokens] * len(contexts),
        }
        target, result = self._invoke(customer, "autocomplete", None, inputs)
        return results.completions(result, target)

    def _invoke(
        self, customer: str, kind: str, role: str | None, inputs: dict[str, list[Any]]
    ) -> tuple[Target, InvocationResult]:
        target = self.targets.resolve(customer, kind, role)
        return target, self.invoke_target(target.endpoint, target.target_model, kind, inputs)

    def invoke_target(
        self,
        endpoint: str,
        target_model: str,
        kind: str,
        inputs: dict[str, list[Any]],
        *,
        custom_attributes: str | None = None,
        outputs: Sequence[str] = (),
    ) -> InvocationResult:
        """One InvokeEndpoint call of a given TargetModel (promoted or not), with retries.

        `inputs`: one value (or list) per row for each input tensor, e.g. `{"text": ["hi"]}`.
        `outputs`: the outputs to ask for (default all); a JSON client (binary=False) must name
        them. Raises InvocationDeadlineExceeded when retryable errors outlast the policy,
        InvocationRejected at once on any other error, UnreadableAnswer on a body that is not a
        Triton response.
        """
        request = encode_request(inputs, binary=self.binary, outputs=outputs)
        options: dict[str, Any] = {
            "EndpointName": endpoint,
            "TargetModel": target_model,
            "ContentType": request.content_type,
            "Body": request.body,
        }
        if custom_attributes is not None:
            options["CustomAttributes"] = custom_attributes
        attempts = 0

        def attempt() -> tuple[bytes, str | None]:
            nonlocal attempts
            attempts += 1
            response = self.runtime.invoke_endpoint(**options)
            return response["Body"].read(), response.get("ContentType")

        started = time.perf_counter()
        try:
            body, content_type = self.policy.call(attempt)
        except (ClientError, BotoCoreError) as error:
            raise self._failure(error, endpoint, target_model, kind, attempts, started) from None
        latency_ms = (time.perf_counter() - started) * 1000
        try:
            decoded = decode_response(body, content_type)
        except UndecodableResponse as error:
            raise UnreadableAnswer(
                f"{target_model} on {endpoint}: not a Triton inference response ({error}): "
                f"{body[:200]!r}",
                endpoint=endpoint,
                target_model=target_model,
                attempts=attempts,
            ) from None
        return InvocationResult(endpoint, target_model, decoded, latency_ms, attempts)

    def _failure(
        self,
        error: ClientError | BotoCoreError,
        endpoint: str,
        target_model: str,
        kind: str,
        attempts: int,
        started: float,
    ) -> InferenceFailed:
        if isinstance(error, ClientError):
            code, status = error_code(error), error_status(error)
            message = str(error.response.get("Error", {}).get("Message", "")) or str(error)
            original = error.response.get("OriginalMessage")
            if original and original not in message:
                message += f" (model said {error.response.get('OriginalStatusCode')}: {original})"
        else:
            code, status, message = type(error).__name__, None, str(error)
        fields: dict[str, Any] = {
            "endpoint": endpoint,
            "target_model": target_model,
            "attempts": attempts,
            "code": code,
            "error_message": message,
            "status": status,
        }
        where = f"InvokeEndpoint {endpoint} TargetModel {target_model} ({kind})"
        shown = f"{code} ({status})" if status is not None else code
        if not is_retryable(error):
            return InvocationRejected(f"{where}: {shown}: {message}", **fields)
        waited = time.perf_counter() - started
        policy = self.policy
        return InvocationDeadlineExceeded(
            f"{where}: gave up after {attempts} attempts in {waited:.1f} s (deadline "
            f"{policy.deadline_s:g} s, at most {policy.max_retries} retries); last error "
            f"{shown}: {message}. The model may still be loading or the endpoint be throttled "
            "or unreachable: retry later, or raise sagemaker.invoke_deadline_s",
            **fields,
        )
