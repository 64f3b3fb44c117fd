"""Triton Python-backend step: class probabilities in, the top label and its probability out.

numpy only; the label order is `labels.txt` (one label per line, index order).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def initialize(self, args: dict[str, str]) -> None:
        config = json.loads(args["model_config"])
        self.input_name = config["input"][0]["name"]
        self.label_name, self.probability_name = (item["name"] for item in config["output"][:2])
        path = Path(args["model_repository"]) / args["model_version"] / "labels.txt"
        lines = path.read_text(encoding="utf-8").splitlines()
        self.labels = np.array([line.encode("utf-8") for line in lines if line], dtype=np.object_)

    def execute(self, requests: list[Any]) -> list[Any]:
        responses = []
        for request in requests:
            probabilities = pb_utils.get_input_tensor_by_name(request, self.input_name).as_numpy()
            best = probabilities.argmax(axis=-1)
            labels = self.labels[best].reshape(-1, 1)
            top = np.take_along_axis(probabilities, best[:, None], axis=-1).astype(np.float32)
            responses.append(
                pb_utils.InferenceResponse(
                    output_tensors=[
                        pb_utils.Tensor(self.label_name, labels),
                        pb_utils.Tensor(self.probability_name, top),
                    ]
                )
            )
        return responses
