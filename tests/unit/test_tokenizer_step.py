"""The tokenizer step's encoding: truncation to max_length, padding to the longest text only."""

from __future__ import annotations

import ast
import importlib.util
import sys
import types
from pathlib import Path

import pytest

from tasks.packaging.triton_layout import TRITON_MODELS
from test_support.tiny_exports import minilm_tokenizer_json


@pytest.fixture(scope="module")
def step() -> types.ModuleType:
    """shared/code/v1/tokenizer_step.py, imported without Triton (its utils module is stubbed)."""
    sys.modules.setdefault("triton_python_backend_utils", types.ModuleType("pb_utils_stub"))
    path = TRITON_MODELS / "shared" / "code" / "v1" / "tokenizer_step.py"
    spec = importlib.util.spec_from_file_location("tokenizer_step_v1", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_short_texts_are_padded_to_the_longest_not_to_128(step: types.ModuleType) -> None:
    tokenizer = step.load_tokenizer(Path(minilm_tokenizer_json()), max_length=32)
    ids, mask = step.encode(tokenizer, ["hi", "where is my parcel"])
    assert ids.shape == mask.shape == (2, 6)
    assert mask.tolist() == [[1, 1, 1, 0, 0, 0], [1, 1, 1, 1, 1, 1]]
    assert ids[0, 3:].tolist() == [0, 0, 0]


def test_long_texts_are_truncated_to_max_length(step: types.ModuleType) -> None:
    tokenizer = step.load_tokenizer(Path(minilm_tokenizer_json()), max_length=8)
    ids, mask = step.encode(tokenizer, ["word " * 50, ""])
    assert ids.shape == (2, 8)
    assert ids[0, -1] == 102  # [SEP] kept after truncation
    assert mask[1].tolist() == [1, 1, 0, 0, 0, 0, 0, 0]  # the empty text is [CLS] [SEP]


def test_the_step_imports_neither_torch_nor_transformers() -> None:
    source = (TRITON_MODELS / "shared" / "code" / "v1" / "tokenizer_step.py").read_text()
    imported = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
    assert imported.isdisjoint({"torch", "transformers"})
    assert "tokenizers" in imported
