"""Triton Python-backend step (KIND_CPU): the generator's token ids in; each completion's text,
cut at the first stop string, and why it ended out. `tokenizers` and numpy only.

The request's `stop` strings apply when it sends them, else export.json's.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import triton_python_backend_utils as pb_utils
from completion_text import completion
from tokenizers import Tokenizer


class TritonPythonModel:
    def initialize(self, args: dict[str, str]) -> None:
        config = json.loads(args["model_config"])
        parameters = {key: value["string_value"] for key, value in config["parameters"].items()}
        self.default_stop = [str(item) for item in json.loads(parameters["stop"])]
        path = Path(args["model_repository"]) / args["model_version"] / "tokenizer.json"
        self.tokenizer = Tokenizer.from_file(str(path))

    def execute(self, requests: list[Any]) -> list[Any]:
        return [self._detokenize(request) for request in requests]

    def _detokenize(self, request: Any) -> Any:
        tokens = pb_utils.get_input_tensor_by_name(request, "token_ids").as_numpy()
        finish = pb_utils.get_input_tensor_by_name(request, "finish").as_numpy().reshape(-1)
        stops = _stop_lists(request, len(finish))
        texts, reasons = [], []
        for row, code, stop in zip(tokens, finish, stops, strict=True):
            text, reason = completion(
                self._decode, row.tolist(), int(code), self.default_stop if stop is None else stop
            )
            texts.append(text.encode("utf-8"))
            reasons.append(reason.encode("utf-8"))
        shape = (len(texts), 1)
        return pb_utils.InferenceResponse(
            output_tensors=[
                pb_utils.Tensor("completion", np.array(texts, dtype=np.object_).reshape(shape)),
                pb_utils.Tensor(
                    "finish_reason", np.array(reasons, dtype=np.object_).reshape(shape)
                ),
            ]
        )

    def _decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=True)


def _stop_lists(request: Any, count: int) -> list[list[str] | None]:
    """Each row's stop strings; None (export.json's) when the request sends no `stop`."""
    tensor = pb_utils.get_input_tensor_by_name(request, "stop")
    if tensor is None:
        return [None] * count
    rows = tensor.as_numpy().reshape(count, -1)
    return [[item.decode("utf-8") for item in row if item] for row in rows]
