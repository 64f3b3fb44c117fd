"""Triton Python-backend step: strings in, `input_ids` and `attention_mask` out.

Uses the `tokenizers` library only (never transformers or torch), so each instance of this
step stays small in memory. Truncates to the exported `max_length` and pads to the longest
text of each request, never to a fixed length: the exported tokenizer.json may pad every text
to 128 tokens, which would make short texts pay for 128.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import triton_python_backend_utils as pb_utils
from tokenizers import Tokenizer


class TritonPythonModel:
    def initialize(self, args: dict[str, str]) -> None:
        config = json.loads(args["model_config"])
        parameters = {key: value["string_value"] for key, value in config["parameters"].items()}
        self.input_name = config["input"][0]["name"]
        self.ids_name, self.mask_name = (item["name"] for item in config["output"][:2])
        path = Path(args["model_repository"]) / args["model_version"] / "tokenizer.json"
        self.tokenizer = load_tokenizer(path, int(parameters["max_length"]))

    def execute(self, requests: list[Any]) -> list[Any]:
        responses = []
        for request in requests:
            texts = pb_utils.get_input_tensor_by_name(request, self.input_name).as_numpy()
            ids, mask = encode(self.tokenizer, [_text(item) for item in texts.reshape(-1)])
            responses.append(
                pb_utils.InferenceResponse(
                    output_tensors=[
                        pb_utils.Tensor(self.ids_name, ids),
                        pb_utils.Tensor(self.mask_name, mask),
                    ]
                )
            )
        return responses


def load_tokenizer(path: Path, max_length: int) -> Tokenizer:
    tokenizer = Tokenizer.from_file(str(path))
    padding = tokenizer.padding or {}
    tokenizer.enable_truncation(max_length=max_length)
    tokenizer.enable_padding(
        pad_id=padding.get("pad_id", 0),
        pad_type_id=padding.get("pad_type_id", 0),
        pad_token=padding.get("pad_token", "[PAD]"),
        length=None,
    )
    return tokenizer


def encode(tokenizer: Tokenizer, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    encodings = tokenizer.encode_batch(texts)
    ids = np.array([encoding.ids for encoding in encodings], dtype=np.int64)
    mask = np.array([encoding.attention_mask for encoding in encodings], dtype=np.int64)
    return ids, mask


def _text(item: object) -> str:
    return item.decode("utf-8", errors="replace") if isinstance(item, bytes) else str(item)
