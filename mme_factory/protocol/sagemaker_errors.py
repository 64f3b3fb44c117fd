"""SageMaker's error codes, the headers AWS answers them in, and which ones are worth a retry.

SageMaker asks callers to retry ModelNotReadyException (429: the model is still loading),
ThrottlingException and ServiceUnavailable (503), and InternalFailure (500). Everything else
(ValidationError 400, ModelError 424, a body over the size limit 413) is final.
"""

from __future__ import annotations

# The runtime API (InvokeEndpoint).
VALIDATION_ERROR = "ValidationError"  # 400: unknown endpoint, missing or malformed TargetModel
MODEL_ERROR = "ModelError"  # 424: the model failed to load or to answer
MODEL_NOT_READY = "ModelNotReadyException"  # 429: still loading
THROTTLING = "ThrottlingException"
SERVICE_UNAVAILABLE = "ServiceUnavailable"  # 503
INTERNAL_FAILURE = "InternalFailure"  # 500
# The control-plane API.
VALIDATION_EXCEPTION = "ValidationException"
UNKNOWN_OPERATION = "UnknownOperationException"

# botocore reads an error's code from this header (or the body's `__type`).
ERROR_TYPE_HEADER = "x-amzn-ErrorType"
REQUEST_ID_HEADER = "x-amzn-RequestId"

RETRYABLE_CODES = frozenset({MODEL_NOT_READY, THROTTLING, SERVICE_UNAVAILABLE, INTERNAL_FAILURE})
RETRYABLE_STATUSES = frozenset({429, 500, 503})

# Triton's SageMaker front end answers 507 when a model runs out of memory, loading or
# answering; SageMaker then unloads the least recently used model and tries again.
OUT_OF_MEMORY = 507


def is_retryable_error(code: str, status: int | None) -> bool:
    """Whether an error SageMaker answered with `code` (and HTTP `status`) is worth a retry."""
    return code in RETRYABLE_CODES or status in RETRYABLE_STATUSES
