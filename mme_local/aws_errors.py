"""Errors in the shape AWS answers, so boto3 raises `ClientError` with AWS's codes.

Both protocols botocore speaks here (JSON 1.1 for `sagemaker`, REST-JSON for
`sagemaker-runtime`) read the code from the `x-amzn-ErrorType` header or the body's `__type`.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from starlette.responses import Response

from mme_factory.protocol import (
    AWS_JSON_CONTENT_TYPE,
    ERROR_TYPE_HEADER,
    INTERNAL_FAILURE,
    MODEL_ERROR,
    MODEL_NOT_READY,
    REQUEST_ID_HEADER,
    SERVICE_UNAVAILABLE,
    VALIDATION_ERROR,
    VALIDATION_EXCEPTION,
)


class AwsError(Exception):
    """An error answered to the client; `code` None leaves botocore to use the status as code."""

    def __init__(self, status: int, code: str | None, message: str, **fields: Any) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.fields = status, code, message, fields

    def response(self) -> Response:
        body: dict[str, Any] = {"message": self.message, **self.fields}
        headers = {REQUEST_ID_HEADER: str(uuid.uuid4())}
        if self.code is not None:
            body["__type"] = self.code
            headers[ERROR_TYPE_HEADER] = self.code
        return Response(json.dumps(body), self.status, headers, media_type=AWS_JSON_CONTENT_TYPE)


def validation_error(message: str) -> AwsError:
    """Runtime API: unknown endpoint, missing or malformed TargetModel (400)."""
    return AwsError(400, VALIDATION_ERROR, message)


def endpoint_not_found(name: str) -> AwsError:
    """Runtime API: the endpoint does not exist, or was deleted while the request waited (400)."""
    return validation_error(f"Endpoint {name} of account 000000000000 not found.")


def control_validation(message: str) -> AwsError:
    """Control-plane API: bad request shape or unknown resource (400)."""
    return AwsError(400, VALIDATION_EXCEPTION, message)


def model_error(original_status: int, original_message: str, target_model: str) -> AwsError:
    """The model failed to load or infer (424), with the container's own status and message."""
    side = "client" if 400 <= original_status < 500 else "server"
    message = (
        f"Received {side} error ({original_status}) from primary with message "
        f'"{original_message}" for TargetModel {target_model!r}.'
    )
    return AwsError(
        424,
        MODEL_ERROR,
        message,
        OriginalStatusCode=original_status,
        OriginalMessage=original_message,
        LogStreamArn="local",
    )


def model_not_ready(target_model: str, waited_s: float) -> AwsError:
    return AwsError(
        429,
        MODEL_NOT_READY,
        f"Model {target_model!r} is still loading after {waited_s:.1f} s; retry the request.",
    )


def service_unavailable(message: str) -> AwsError:
    return AwsError(503, SERVICE_UNAVAILABLE, message)


def internal_failure(error: Exception) -> AwsError:
    """Anything unexpected: AWS's InternalFailure (500) instead of a bare traceback."""
    return AwsError(500, INTERNAL_FAILURE, f"mme_local failed: {type(error).__name__}: {error}")


def body_too_large(limit: int) -> AwsError:
    # AWS answers a bare 413 without an error type; botocore then reports the code "413".
    return AwsError(413, None, f"HTTP content length exceeded {limit} bytes.")
