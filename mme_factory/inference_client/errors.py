"""What a failed call to a served model raises; each message names the endpoint and TargetModel."""

from __future__ import annotations

from mme_factory.errors import MmeFactoryError


class TargetNotRegistered(MmeFactoryError):
    """The customer has no manifest, or its manifest serves no model of that kind and role."""


class InferenceFailed(MmeFactoryError):
    """An InvokeEndpoint call did not give an answer the client could read."""

    def __init__(
        self,
        message: str,
        *,
        endpoint: str,
        target_model: str,
        attempts: int,
        code: str = "",
        error_message: str = "",
        status: int | None = None,
    ) -> None:
        super().__init__(message)
        self.endpoint, self.target_model, self.attempts = endpoint, target_model, attempts
        self.code, self.error_message, self.status = code, error_message, status


class InvocationDeadlineExceeded(InferenceFailed):
    """Retryable errors (still loading, throttled, unavailable, unreachable) lasted too long."""


class InvocationRejected(InferenceFailed):
    """An error retrying cannot fix (a bad request, the model failing): raised at once."""


class UnreadableAnswer(InferenceFailed):
    """The endpoint answered 200 with a body that is not a Triton inference response."""
