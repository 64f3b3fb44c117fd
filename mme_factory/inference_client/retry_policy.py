"""Which InvokeEndpoint errors are worth another try, and how long to keep trying.

What SageMaker says to retry (`mme_factory.protocol.sagemaker_errors`) is retried, and so are
connections refused or reset (an endpoint restarting); everything else is final. Waits are
exponential with full jitter, so callers that failed together do not come back together.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from botocore.exceptions import ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as EndpointUnreachable
from tenacity import (
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    stop_before_delay,
    wait_random_exponential,
)

from mme_factory.protocol import is_retryable_error
from mme_factory.settings.sagemaker import SageMakerSettings

T = TypeVar("T")


def error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def error_status(error: ClientError) -> int | None:
    status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return int(status) if status is not None else None


def is_retryable(error: BaseException) -> bool:
    if isinstance(error, ClientError):
        return is_retryable_error(error_code(error), error_status(error))
    # Refused, reset, timed out: the request never reached a model, or its answer was lost.
    return isinstance(error, EndpointUnreachable | HTTPClientError)


@dataclass(frozen=True)
class RetryPolicy:
    deadline_s: float = 120.0  # no new attempt starts later than this after the first
    max_retries: int = 8  # attempts after the first, at most
    backoff_base_s: float = 0.5  # the first wait is up to this long; each window doubles
    backoff_cap_s: float = 8.0  # no wait is longer

    @classmethod
    def from_settings(cls, sagemaker: SageMakerSettings) -> RetryPolicy:
        return cls(
            deadline_s=sagemaker.invoke_deadline_s,
            max_retries=sagemaker.invoke_retries,
            backoff_base_s=sagemaker.invoke_backoff_base_s,
            backoff_cap_s=sagemaker.invoke_backoff_cap_s,
        )

    def call(self, attempt: Callable[[], T]) -> T:
        """`attempt`'s result, tried again on retryable errors while the policy allows.

        What ends the trying is raised as the last attempt raised it: a retryable error once
        the deadline or the retry limit is reached, any other error at once.
        """
        retrying = Retrying(
            retry=retry_if_exception(is_retryable),
            stop=stop_before_delay(self.deadline_s) | stop_after_attempt(self.max_retries + 1),
            wait=wait_random_exponential(multiplier=self.backoff_base_s, max=self.backoff_cap_s),
            reraise=True,
        )
        return retrying(attempt)
