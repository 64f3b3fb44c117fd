"""Triton Python-backend model (KIND_CPU) for both text steps around the autocomplete generator;
the ensemble calls it twice, and what a request carries says which step it is:

- `text` (+ optional `reply_start`, `max_new_tokens`): the prompt is built as in training, from
  export.json's `prompt_format`, and the generator's left-padded `input_ids`, `attention_mask`
  and each row's `new_token_limit` come back;
- `token_ids` and `finish` (+ optional `stop`): each completion's text, cut at the first stop
  string (the request's, else export.json's), and its `finish_reason` come back.

One model rather than two halves the stub processes (host memory and /dev/shm) per TargetModel.
`tokenizers` and numpy only.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import triton_python_backend_utils as pb_utils
from completion_text import build_prompt, completion, left_padded, prompt_ids
from tokenizers import Tokenizer


class TritonPythonModel:
    def initialize(self, args: dict[str, str]) -> None:
        config = json.loads(args["model_config"])
        parameters = {key: value["string_value"] for key, value in config["parameters"].items()}
        self.max_length = int(parameters["max_length"])
        self.max_positions = int(parameters["max_position_embeddings"])
        self.default_new_tokens = int(parameters["default_max_new_tokens"])
        self.new_tokens_limit = int(parameters["max_new_tokens"])
        self.prompt_format = parameters["prompt_format"]
        self.bos_token_id = _optional_int(parameters["bos_token_id"])
        self.pad_id = int(parameters["pad_token_id"])
        self.pad_multiple = int(parameters["pad_to_multiple"])
        self.default_stop = [str(item) for item in json.loads(parameters["stop"])]
        path = Path(args["model_repository"]) / args["model_version"] / "tokenizer.json"
        self.tokenizer = Tokenizer.from_file(str(path))
        self.tokenizer.no_padding()
        self.tokenizer.no_truncation()

    def execute(self, requests: list[Any]) -> list[Any]:
        return [
            self._detokenize(request)
            if pb_utils.get_input_tensor_by_name(request, "token_ids") is not None
            else self._tokenize(request)
            for request in requests
        ]

    def _tokenize(self, request: Any) -> Any:
        texts = _strings(request, "text")
        starts = _strings(request, "reply_start") or [""] * len(texts)
        asked = _ints(request, "max_new_tokens", len(texts), self.default_new_tokens)
        prompts = [
            build_prompt(self.prompt_format, text, start)
            for text, start in zip(texts, starts, strict=True)
        ]
        encodings = self.tokenizer.encode_batch(prompts, add_special_tokens=False)
        rows, limits = [], []
        for encoding, wanted in zip(encodings, asked, strict=True):
            limit = min(max(wanted, 0), self.new_tokens_limit)
            row = prompt_ids(
                encoding.ids, self.max_length, self.max_positions - limit, self.bos_token_id
            )
            rows.append(row)
            limits.append(limit if row else -1)  # -1: nothing to continue
        ids, mask = left_padded(rows, self.pad_id, self.pad_multiple)
        return pb_utils.InferenceResponse(
            output_tensors=[
                pb_utils.Tensor("input_ids", ids),
                pb_utils.Tensor("attention_mask", mask),
                pb_utils.Tensor("new_token_limit", np.array(limits, np.int64).reshape(-1, 1)),
            ]
        )

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


def _strings(request: Any, name: str) -> list[str]:
    tensor = pb_utils.get_input_tensor_by_name(request, name)
    if tensor is None:
        return []
    return [item.decode("utf-8", errors="replace") for item in tensor.as_numpy().reshape(-1)]


def _ints(request: Any, name: str, count: int, default: int) -> list[int]:
    tensor = pb_utils.get_input_tensor_by_name(request, name)
    if tensor is None:
        return [default] * count
    values = [int(value) for value in tensor.as_numpy().reshape(-1)]
    return values if len(values) == count else [values[0]] * count


def _stop_lists(request: Any, count: int) -> list[list[str] | None]:
    """Each row's stop strings; None (export.json's) when the request sends no `stop`."""
    tensor = pb_utils.get_input_tensor_by_name(request, "stop")
    if tensor is None:
        return [None] * count
    rows = tensor.as_numpy().reshape(count, -1)
    return [[item.decode("utf-8") for item in row if item] for row in rows]


def _optional_int(value: str) -> int | None:
    return int(value) if value.strip().lstrip("-").isdigit() else None
