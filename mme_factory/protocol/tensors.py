"""Input tensors of one value (or one list) per row, and the output tensors of an answer.

Both codecs take inputs as `{"name": [row, ...]}`: one value per row gives shape [rows, 1], one
list per row gives [rows, width]. Python str, int and float travel as BYTES, INT32 and FP32.
Answers, JSON or binary, are read by tritonclient.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from tritonclient.http import InferenceServerClient

DATATYPES: dict[type, tuple[str, Any]] = {
    str: ("BYTES", np.object_),
    int: ("INT32", np.int32),
    float: ("FP32", np.float32),
}


@dataclass(frozen=True)
class RowTensor:
    name: str
    datatype: str
    shape: tuple[int, int]
    values: list[Any]  # row after row

    def array(self) -> np.ndarray:
        """The values as a numpy array of the tensor's shape (BYTES as UTF-8 bytes)."""
        dtype = next(dtype for name, dtype in DATATYPES.values() if name == self.datatype)
        values = [v.encode("utf-8") for v in self.values] if dtype is np.object_ else self.values
        return np.array(values, dtype=dtype).reshape(self.shape)


def row_tensor(name: str, rows: list[Any]) -> RowTensor:
    """The input `name` of one value per row (or one list per row)."""
    if not rows:
        raise ValueError(f"input {name!r} has no rows")
    nested = isinstance(rows[0], list)
    values = [item for row in rows for item in row] if nested else list(rows)
    if not values:
        raise ValueError(f"input {name!r} has empty rows")
    sample = values[0]
    if type(sample) not in DATATYPES:
        raise ValueError(f"input {name!r}: {type(sample).__name__} values cannot be sent")
    width = len(rows[0]) if nested else 1
    return RowTensor(name, DATATYPES[type(sample)][0], (len(rows), width), values)


def response_outputs(body: bytes, header_length: int | None) -> dict[str, np.ndarray | None]:
    """Every output of a KServe v2 answer by name, shaped as Triton says (BYTES as str in a
    JSON answer, as bytes in a binary one); `header_length` None: the body is all JSON."""
    result = InferenceServerClient.parse_response_body(body, header_length=header_length)
    names = [output["name"] for output in result.get_response().get("outputs", [])]
    return {name: result.as_numpy(name) for name in names}
