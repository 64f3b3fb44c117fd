"""bench/gpu_check.py on the CPU path: the same steps a GPU machine runs, on tiny exports."""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
from pathlib import Path
from types import ModuleType

import pytest
import torch
from tokenizers import Tokenizer

from tasks.training.autocomplete.export import export_autocomplete
from test_support.paths import REPO
from test_support.tiny_base_models import tiny_llama
from test_support.tiny_exports import minilm_tokenizer_json, write_classifier


def load_gpu_check() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gpu_check", REPO / "bench" / "gpu_check.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["gpu_check"] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("bundle")
    model = tiny_llama(5, vocab_size=30522, max_position_embeddings=128, eos_token_id=102)
    tokenizer = Tokenizer.from_file(str(minilm_tokenizer_json()))
    export_autocomplete(
        model, tokenizer, 102, root / "export" / "autocomplete", 48, 5e-2, dtype=torch.float16
    )
    write_classifier(root / "export" / "classifier", 6)
    for kind in ("autocomplete", "classifier"):
        (root / "bundle" / kind).mkdir(parents=True)
        for name in ("model.pt", "export.json"):
            shutil.copyfile(root / "export" / kind / name, root / "bundle" / kind / name)
    return root / "bundle"


def test_every_kind_in_the_bundle_is_measured_and_written_for_the_planner(
    bundle: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gpu_check = load_gpu_check()
    out = tmp_path / "gpu_check.json"
    monkeypatch.setattr(sys, "argv", ["gpu_check", str(bundle), "--out", str(out), "--copies", "2"])
    gpu_check.main()
    document = json.loads(out.read_text())
    assert document["schema"] == "mme-factory/gpu-check/1"
    assert document["on_gpu"] is False
    assert set(document["kinds"]) == {"autocomplete", "classifier"}
    autocomplete, classifier = document["kinds"]["autocomplete"], document["kinds"]["classifier"]
    # Half precision is checked where the export is half precision, float32 everywhere.
    assert autocomplete["dtype"] == "float16" and classifier["dtype"] == "float32"
    assert autocomplete["parity_ok"] == {"float32": True, "float16": True}
    assert classifier["parity_ok"] == {"float32": True, "float16": None}
    for figures in document["kinds"].values():
        assert figures["gpu_mib_per_model"] > 0.1
        assert set(figures["requests_per_s"]) == {"1", "8", "32"}
    tokens = document["kinds"]["autocomplete"]["tokens_per_s"]
    # Rates only: which batch size is faster depends on the machine's load, not on the code.
    assert set(tokens) == {"1", "8", "32"} and min(tokens.values()) > 0


def test_an_empty_bundle_is_refused_naming_the_kinds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gpu_check = load_gpu_check()
    monkeypatch.setattr(sys, "argv", ["gpu_check", str(tmp_path)])
    with pytest.raises(SystemExit, match="holds none of embedding, classifier, autocomplete"):
        gpu_check.main()
