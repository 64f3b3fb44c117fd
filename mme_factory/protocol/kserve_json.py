"""KServe v2 JSON bodies, for callers that talk JSON to a Triton server directly.

The planner's measurements, tests and benchmarks use these; calls through an endpoint go through
`mme_factory.inference_client`, which sends Triton's binary tensor encoding (`invoke_codec.py`).
tritonclient's request helper would ask for every output as raw bytes unless each is named, so
the request is written here; the answer is read by tritonclient.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from mme_factory.protocol.tensors import response_outputs, row_tensor


def kserve_request(inputs: dict[str, list[Any]]) -> bytes:
    """A KServe v2 JSON body: each input is one value per row (a list for list inputs).

    `{"text": ["a", "b"], "max_new_tokens": [8, 8]}` gives tensors of shape [2, 1];
    `{"stop": [["\\n"], ["."]]}` gives shape [2, 1] rows of strings.
    """
    tensors = []
    for name, rows in inputs.items():
        tensor = row_tensor(name, rows)
        tensors.append(
            {
                "name": name,
                "shape": list(tensor.shape),
                "datatype": tensor.datatype,
                "data": tensor.values,
            }
        )
    return json.dumps({"inputs": tensors}).encode("utf-8")


def kserve_outputs(body: bytes) -> dict[str, np.ndarray]:
    """The outputs of a KServe v2 JSON response, by name, shaped as Triton says."""
    return {
        name: array for name, array in response_outputs(body, None).items() if array is not None
    }
