"""The previous autocomplete design, kept as the serving benchmark's baseline: one Python-backend
model that imports torch and runs the in-process decoder (`llama_decoder.py`, shipped beside it)
request by request. The serving image no longer has torch; the benchmark runs this model with a
models' environment that does.

A conversation (and the reply typed so far) in, a completion out.

The prompt is built as in training, from export.json's `prompt_format` (e.g.
"{context}\nAgent: {reply_start}"); export.json's `stop` strings apply when a request names none.

Generation runs `llama_decoder.LlamaDecoder` (plain torch, key/value cache) under
`torch.inference_mode()`, honouring max new tokens, stop strings and a time limit per request.
Tensors move to the GPU only when Triton gives this instance a GPU (`KIND_GPU`).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import triton_python_backend_utils as pb_utils
from tokenizers import Tokenizer

sys.path.insert(0, str(Path(__file__).resolve().parent))

from completion_text import build_prompt
from llama_decoder import LlamaDecoder, complete_text


class TritonPythonModel:
    def initialize(self, args: dict[str, str]) -> None:
        config = json.loads(args["model_config"])
        parameters = {key: value["string_value"] for key, value in config["parameters"].items()}
        self.max_length = int(parameters["max_length"])
        self.eos_token_id = int(parameters["eos_token_id"])
        self.default_new_tokens = int(parameters["default_max_new_tokens"])
        self.default_time_limit_ms = int(parameters["default_time_limit_ms"])
        self.prompt_format = parameters["prompt_format"]
        self.default_stop = [str(item) for item in json.loads(parameters["stop"])]
        on_gpu = args.get("model_instance_kind") == "GPU"
        device = f"cuda:{args['model_instance_device_id']}" if on_gpu else "cpu"
        directory = Path(args["model_repository"]) / args["model_version"]
        self.decoder = LlamaDecoder.from_files(
            directory / "config.json", directory / "weights.pt", device=device
        )
        self.tokenizer = Tokenizer.from_file(str(directory / "tokenizer.json"))
        self.tokenizer.no_padding()
        self.tokenizer.no_truncation()

    def execute(self, requests: list[Any]) -> list[Any]:
        return [self._respond(request) for request in requests]

    def _respond(self, request: Any) -> Any:
        texts = _strings(request, "text")
        starts = _strings(request, "reply_start") or [""] * len(texts)
        new_tokens = _ints(request, "max_new_tokens", len(texts), self.default_new_tokens)
        time_limits = _ints(request, "time_limit_ms", len(texts), self.default_time_limit_ms)
        stops = _stop_lists(request, len(texts))
        completions, reasons = [], []
        for text, start, limit, time_limit_ms, stop in zip(
            texts, starts, new_tokens, time_limits, stops, strict=True
        ):
            result = complete_text(
                self.decoder,
                self.tokenizer,
                build_prompt(self.prompt_format, text, start),
                self.max_length,
                self.eos_token_id,
                max_new_tokens=limit,
                stop=stop if stop is not None else self.default_stop,
                time_limit_s=time_limit_ms / 1000.0,
            )
            completions.append(result.text.encode("utf-8"))
            reasons.append(result.finish_reason.encode("utf-8"))
        shape = (len(texts), 1)
        return pb_utils.InferenceResponse(
            output_tensors=[
                pb_utils.Tensor(
                    "completion", np.array(completions, dtype=np.object_).reshape(shape)
                ),
                pb_utils.Tensor(
                    "finish_reason", np.array(reasons, dtype=np.object_).reshape(shape)
                ),
            ]
        )


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
    """Each row's stop strings; None (use export.json's) when the request sends no `stop`."""
    tensor = pb_utils.get_input_tensor_by_name(request, "stop")
    if tensor is None:
        return [None] * count
    rows = tensor.as_numpy().reshape(count, -1)
    return [[item.decode("utf-8") for item in row if item] for row in rows]
