"""Calling customers' served models through their multi-model endpoints.

`InferenceClient.from_settings(settings)` resolves each customer's current TargetModel from its
manifest, sends Triton's binary tensor encoding, retries what SageMaker says to retry within a
deadline, and returns typed results.
"""

from mme_factory.inference_client.client import InferenceClient
from mme_factory.inference_client.errors import (
    InferenceFailed,
    InvocationDeadlineExceeded,
    InvocationRejected,
    TargetNotRegistered,
    UnreadableAnswer,
)
from mme_factory.inference_client.results import (
    Classification,
    Completion,
    Embeddings,
    InvocationResult,
)
from mme_factory.inference_client.retry_policy import RetryPolicy, is_retryable
from mme_factory.inference_client.targets import Target, TargetResolver

__all__ = [
    "Classification",
    "Completion",
    "Embeddings",
    "InferenceClient",
    "InferenceFailed",
    "InvocationDeadlineExceeded",
    "InvocationRejected",
    "InvocationResult",
    "RetryPolicy",
    "Target",
    "TargetNotRegistered",
    "TargetResolver",
    "UnreadableAnswer",
    "is_retryable",
]
