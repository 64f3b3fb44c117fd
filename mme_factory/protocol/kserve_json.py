"""The KServe v2 JSON wire format of Triton's inference requests and responses.

For callers that talk JSON to a Triton server directly (the planner's measurements, tests and
benchmarks). Calls through an endpoint go through `mme_factory.inference_client`, which sends
Triton's binary tensor encoding with tritonclient's codec.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

_DATATYPES = {str: "BYTES", int: "INT32", float: "FP32"}


def kserve_request(inputs: dict[str, list[Any]]) -> bytes:
    """A KServe v2 JSON body: each input is one value per row (a list for list inputs).

    `{"text": ["a", "b"], "max_new_tokens": [8, 8]}` gives tensors of shape [2, 1];
    `{"stop": [["\\n"], ["."]]}` gives shape [2, 1] rows of strings.
    """
    tensors = []
    for name, rows in inputs.items():
        nested = bool(rows) and isinstance(rows[0], list)
        width = len(rows[0]) if nested else 1
        flat = [item for row in rows for item in row] if nested else list(rows)
        sample = flat[0] if flat else ""
        tensors.append(
            {
                "name": name,
                "shape": [len(rows), width],
                "datatype": _DATATYPES[type(sample)],
                "data": flat,
            }
        )
    return json.dumps({"inputs": tensors}).encode("utf-8")


def kserve_outputs(body: bytes) -> dict[str, np.ndarray]:
    """The outputs of a KServe v2 JSON response, by name, shaped as Triton says."""
    outputs = {}
    for item in json.loads(body)["outputs"]:
        dtype = (
            np.object_
            if item["datatype"] == "BYTES"
            else np.dtype(item["datatype"].lower().replace("fp", "float"))
        )
        outputs[item["name"]] = np.array(item["data"], dtype=dtype).reshape(item["shape"])
    return outputs
