"""The content types of inference bodies and AWS answers, and the binary header's length.

Triton's binary tensor extension puts a JSON header before the raw tensor bytes. Triton's own
KServe port takes the header's length in the `Inference-Header-Content-Length` header; SageMaker
passes no custom headers to the container, so over InvokeEndpoint the length rides in the content
type instead, as the SageMaker Triton front end expects:
`application/vnd.sagemaker-triton.binary+json;json-header-size=N`.
"""

from __future__ import annotations

JSON_CONTENT_TYPE = "application/json"
# AWS's JSON 1.1 protocol: the control-plane API and the errors of both APIs.
AWS_JSON_CONTENT_TYPE = "application/x-amz-json-1.1"
# What Triton's KServe port takes for a body with binary tensors.
OCTET_STREAM = "application/octet-stream"
INFERENCE_HEADER_CONTENT_LENGTH = "Inference-Header-Content-Length"

BINARY_MEDIA_TYPE = "application/vnd.sagemaker-triton.binary+json"
HEADER_SIZE_PARAMETER = "json-header-size"
# A binary body's content type is this followed by the length of its JSON header.
BINARY_CONTENT_TYPE = f"{BINARY_MEDIA_TYPE};{HEADER_SIZE_PARAMETER}="


def binary_content_type(header_length: int) -> str:
    """The content type of a binary body whose JSON header is `header_length` bytes long."""
    return f"{BINARY_CONTENT_TYPE}{header_length}"


def binary_header_length(content_type: str | None) -> int | None:
    """The JSON header's length that a binary content type carries; None for any other type.

    ValueError when the type is the binary one but carries no length.
    """
    if not content_type or not content_type.startswith(BINARY_MEDIA_TYPE):
        return None
    for parameter in content_type[len(BINARY_MEDIA_TYPE) :].split(";"):
        name, _, value = parameter.partition("=")
        if name.strip() == HEADER_SIZE_PARAMETER and value.strip().isdigit():
            return int(value.strip())
    raise ValueError(f"no {HEADER_SIZE_PARAMETER} in content type {content_type!r}")
