"""The wire protocol that the inference client, the warm-up and the local endpoint all speak.

content_types.py     inference and AWS content types; the binary JSON header's length
invoke_headers.py    InvokeEndpoint's headers and the warm-up's CustomAttributes mark
sagemaker_errors.py  SageMaker's error codes and which ones are worth a retry; 507
local_routes.py      the local endpoint service's own routes (describe, unload)
tensors.py           input tensors of one value per row; output tensors of an answer
invoke_codec.py      InvokeEndpoint bodies in Triton's binary tensor encoding
kserve_json.py       KServe v2 JSON bodies for calls straight to a Triton server
"""

from mme_factory.protocol.content_types import (
    AWS_JSON_CONTENT_TYPE,
    BINARY_CONTENT_TYPE,
    BINARY_MEDIA_TYPE,
    INFERENCE_HEADER_CONTENT_LENGTH,
    JSON_CONTENT_TYPE,
    OCTET_STREAM,
    binary_content_type,
    binary_header_length,
)
from mme_factory.protocol.invoke_codec import (
    EncodedRequest,
    UndecodableResponse,
    decode_response,
    encode_request,
)
from mme_factory.protocol.invoke_headers import (
    CUSTOM_ATTRIBUTES_HEADER,
    INVOKED_VARIANT_HEADER,
    TARGET_MODEL_HEADER,
    WARMUP_ATTRIBUTE,
    is_warmup,
)
from mme_factory.protocol.kserve_json import kserve_outputs, kserve_request
from mme_factory.protocol.local_routes import (
    ENDPOINT_ROUTE,
    METRICS_ROUTE,
    PING_ROUTE,
    UNLOAD_PREFIX,
    UNLOAD_ROUTE,
    UNLOADED,
    endpoint_path,
    unload_path,
)
from mme_factory.protocol.sagemaker_errors import (
    ERROR_TYPE_HEADER,
    INTERNAL_FAILURE,
    MODEL_ERROR,
    MODEL_NOT_READY,
    OUT_OF_MEMORY,
    REQUEST_ID_HEADER,
    RETRYABLE_CODES,
    RETRYABLE_STATUSES,
    SERVICE_UNAVAILABLE,
    THROTTLING,
    UNKNOWN_OPERATION,
    VALIDATION_ERROR,
    VALIDATION_EXCEPTION,
    is_retryable_error,
)

__all__ = [
    "AWS_JSON_CONTENT_TYPE",
    "BINARY_CONTENT_TYPE",
    "BINARY_MEDIA_TYPE",
    "CUSTOM_ATTRIBUTES_HEADER",
    "ENDPOINT_ROUTE",
    "ERROR_TYPE_HEADER",
    "INFERENCE_HEADER_CONTENT_LENGTH",
    "INTERNAL_FAILURE",
    "INVOKED_VARIANT_HEADER",
    "JSON_CONTENT_TYPE",
    "METRICS_ROUTE",
    "MODEL_ERROR",
    "MODEL_NOT_READY",
    "OCTET_STREAM",
    "OUT_OF_MEMORY",
    "PING_ROUTE",
    "REQUEST_ID_HEADER",
    "RETRYABLE_CODES",
    "RETRYABLE_STATUSES",
    "SERVICE_UNAVAILABLE",
    "TARGET_MODEL_HEADER",
    "THROTTLING",
    "UNKNOWN_OPERATION",
    "UNLOADED",
    "UNLOAD_PREFIX",
    "UNLOAD_ROUTE",
    "VALIDATION_ERROR",
    "VALIDATION_EXCEPTION",
    "WARMUP_ATTRIBUTE",
    "EncodedRequest",
    "UndecodableResponse",
    "binary_content_type",
    "binary_header_length",
    "decode_response",
    "encode_request",
    "endpoint_path",
    "is_retryable_error",
    "is_warmup",
    "kserve_outputs",
    "kserve_request",
    "unload_path",
]
