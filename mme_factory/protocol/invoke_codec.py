"""The bodies of InvokeEndpoint calls: Triton's binary tensor encoding, through tritonclient.

The JSON header describes the tensors and their raw bytes follow it; the content type carries
the header's length (`content_types.py`). An answer without binary outputs is plain JSON.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from tritonclient.http import InferenceServerClient, InferInput, InferRequestedOutput
from tritonclient.utils import InferenceServerException

from mme_factory.protocol.content_types import (
    JSON_CONTENT_TYPE,
    binary_content_type,
    binary_header_length,
)
from mme_factory.protocol.tensors import response_outputs, row_tensor


class UndecodableResponse(ValueError):
    """The body is not a Triton inference response."""


@dataclass(frozen=True)
class EncodedRequest:
    body: bytes
    content_type: str


def _infer_input(name: str, rows: list[Any], binary: bool) -> InferInput:
    tensor = row_tensor(name, rows)
    infer_input = InferInput(name, list(tensor.shape), tensor.datatype)
    infer_input.set_data_from_numpy(tensor.array(), binary_data=binary)
    return infer_input


def encode_request(
    inputs: dict[str, list[Any]], *, binary: bool = True, outputs: Sequence[str] = ()
) -> EncodedRequest:
    """A request body and its content type.

    `binary`: tensors travel as raw bytes, and every output (or those named in `outputs`) is
    asked for as raw bytes. Without it everything is KServe v2 JSON, and `outputs` must name
    the outputs wanted (with none named, tritonclient asks for every output as raw bytes).
    """
    tensors = [_infer_input(name, rows, binary) for name, rows in inputs.items()]
    requested = [InferRequestedOutput(name, binary_data=binary) for name in outputs] or None
    if not binary and requested is None:
        raise ValueError("a JSON request must name the outputs it wants")
    body, header_length = InferenceServerClient.generate_request_body(tensors, outputs=requested)
    if header_length is None:  # no binary tensor: the body is all JSON
        return EncodedRequest(body, JSON_CONTENT_TYPE)
    return EncodedRequest(body, binary_content_type(header_length))


def decode_response(body: bytes, content_type: str | None) -> dict[str, np.ndarray]:
    """Every output of the answer by name, shaped as Triton says (BYTES as Python bytes)."""
    try:
        outputs = response_outputs(body, binary_header_length(content_type))
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
