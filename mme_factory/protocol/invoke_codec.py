"""Triton's binary tensor extension over InvokeEndpoint, through tritonclient's own codec.

The JSON header describes the tensors and the raw bytes follow it. SageMaker passes no custom
headers to the container, so the header's length rides in the content type, as the SageMaker
Triton front end expects: `application/vnd.sagemaker-triton.binary+json;json-header-size=N`.
Its answer says the same of its own header; an answer without binary outputs is plain JSON.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from tritonclient.http import InferenceServerClient, InferInput, InferRequestedOutput
from tritonclient.utils import InferenceServerException

BINARY_CONTENT_TYPE = "application/vnd.sagemaker-triton.binary+json;json-header-size="
JSON_CONTENT_TYPE = "application/json"

_DATATYPES: dict[type, tuple[str, Any]] = {
    str: ("BYTES", np.object_),
    int: ("INT32", np.int32),
    float: ("FP32", np.float32),
}


class UndecodableResponse(ValueError):
    """The body is not a Triton inference response."""


@dataclass(frozen=True)
class EncodedRequest:
    body: bytes
    content_type: str


def _tensor(name: str, rows: list[Any], binary: bool) -> InferInput:
    """One input of one value per row (or a list per row): shape [rows, width]."""
    if not rows:
        raise ValueError(f"input {name!r} has no rows")
    nested = isinstance(rows[0], list)
    flat = [item for row in rows for item in row] if nested else list(rows)
    width = len(rows[0]) if nested else 1
    if not flat:
        raise ValueError(f"input {name!r} has empty rows")
    sample = flat[0]
    if type(sample) not in _DATATYPES:
        raise ValueError(f"input {name!r}: {type(sample).__name__} values cannot be sent")
    datatype, dtype = _DATATYPES[type(sample)]
    values = [v.encode("utf-8") for v in flat] if dtype is np.object_ else flat
    array = np.array(values, dtype=dtype).reshape(len(rows), width)
    tensor = InferInput(name, list(array.shape), datatype)
    tensor.set_data_from_numpy(array, binary_data=binary)
    return tensor


def encode_request(
    inputs: dict[str, list[Any]], *, binary: bool = True, outputs: Sequence[str] = ()
) -> EncodedRequest:
    """A request body and its content type.

    `binary`: tensors travel as raw bytes, and every output (or those named in `outputs`) is
    asked for as raw bytes. Without it everything is KServe v2 JSON, and `outputs` must name
    the outputs wanted (Triton's JSON default is all outputs, as JSON).
    """
    tensors = [_tensor(name, rows, binary) for name, rows in inputs.items()]
    requested = [InferRequestedOutput(name, binary_data=binary) for name in outputs] or None
    if not binary and requested is None:
        raise ValueError("a JSON request must name the outputs it wants")
    body, header_length = InferenceServerClient.generate_request_body(tensors, outputs=requested)
    if header_length is None:  # no binary tensor: the body is all JSON
        return EncodedRequest(body, JSON_CONTENT_TYPE)
    return EncodedRequest(body, f"{BINARY_CONTENT_TYPE}{header_length}")


def header_length(content_type: str | None) -> int | None:
    """The JSON header's length that a binary answer's content type carries; None for JSON."""
    if not content_type or not content_type.startswith(BINARY_CONTENT_TYPE):
        return None
    size = content_type[len(BINARY_CONTENT_TYPE) :].split(";")[0].strip()
    if not size.isdigit():
        raise UndecodableResponse(f"no header size in content type {content_type!r}")
    return int(size)


def decode_response(body: bytes, content_type: str | None) -> dict[str, np.ndarray]:
    """Every output of the answer by name, shaped as Triton says (BYTES as Python bytes)."""
    try:
        result = InferenceServerClient.parse_response_body(
            body, header_length=header_length(content_type)
        )
        names = [output["name"] for output in result.get_response().get("outputs", [])]
        outputs = {name: result.as_numpy(name) for name in names}
    except (InferenceServerException, ValueError, KeyError, TypeError, IndexError) as error:
        raise UndecodableResponse(f"{type(error).__name__}: {error}") from None
    if not outputs:
        raise UndecodableResponse("the answer holds no outputs")
    return {name: _as_bytes(array) for name, array in outputs.items() if array is not None}


def _as_bytes(array: np.ndarray) -> np.ndarray:
    """JSON answers give BYTES tensors as str, binary ones as bytes: make both bytes."""
    if array.dtype != np.object_:
        return array
    encode = np.vectorize(lambda v: v.encode("utf-8") if isinstance(v, str) else v, otypes=[object])
    return encode(array) if array.size else array
