"""Triton Python-backend model (KIND_CPU) for both steps around the TorchScript classifier; the
ensemble calls it twice, and what a request carries says which step it is:

- `text`: `input_ids` and `attention_mask` come back, tokenized as the embedding ensembles'
  tokenizer step does (`tokenizer_step.py`, shipped beside this file);
- `probabilities`: the top `label` (from `labels.txt`, one per line in index order) and its
  `probability` come back.

One model rather than two halves the stub processes (host memory and /dev/shm) per TargetModel.
`tokenizers` and numpy only.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import triton_python_backend_utils as pb_utils
from tokenizer_step import encode, load_tokenizer


class TritonPythonModel:
    def initialize(self, args: dict[str, str]) -> None:
        config = json.loads(args["model_config"])
        parameters = {key: value["string_value"] for key, value in config["parameters"].items()}
        directory = Path(args["model_repository"]) / args["model_version"]
        self.tokenizer = load_tokenizer(directory / "tokenizer.json", int(parameters["max_length"]))
        lines = (directory / "labels.txt").read_text(encoding="utf-8").splitlines()
        self.labels = np.array([line.encode("utf-8") for line in lines if line], dtype=np.object_)

    def execute(self, requests: list[Any]) -> list[Any]:
        responses = []
        for request in requests:
            probabilities = pb_utils.get_input_tensor_by_name(request, "probabilities")
            if probabilities is None:
                responses.append(self._tokenize(request))
            else:
                responses.append(self._label(probabilities.as_numpy()))
        return responses

    def _tokenize(self, request: Any) -> Any:
        texts = pb_utils.get_input_tensor_by_name(request, "text").as_numpy().reshape(-1)
        ids, mask = encode(self.tokenizer, [_text(item) for item in texts])
        return pb_utils.InferenceResponse(
            output_tensors=[
                pb_utils.Tensor("input_ids", ids),
                pb_utils.Tensor("attention_mask", mask),
            ]
        )

    def _label(self, probabilities: np.ndarray) -> Any:
        best = probabilities.argmax(axis=-1)
        labels = self.labels[best].reshape(-1, 1)
        top = np.take_along_axis(probabilities, best[:, None], axis=-1).astype(np.float32)
        return pb_utils.InferenceResponse(
            output_tensors=[
                pb_utils.Tensor("label", labels),
                pb_utils.Tensor("probability", top),
            ]
        )


def _text(item: object) -> str:
    return item.decode("utf-8", errors="replace") if isinstance(item, bytes) else str(item)
