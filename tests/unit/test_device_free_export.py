"""Encoder and classifier exports: scripted with no device in the graph, float32 or float16
weights, int64 inputs and float32 outputs, checked against the eager model on every device."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from transformers import AutoTokenizer, RobertaConfig, RobertaModel

from mme_factory.gpu_instances import has_nvidia_gpu
from mme_factory.settings import load_settings
from tasks.packaging.device_free_graph import device_pins
from tasks.training.base_models import encoder_location
from tasks.training.encoders import IntentClassifier, SentenceEncoder
from tasks.training.export_dtype import export_dtype, parity_tolerance
from tasks.training.export_torchscript import (
    PARITY_FILE,
    export_classifier,
    export_encoder,
    parity_devices,
)
from tasks.training.plain_bert import UnsupportedEncoder
from test_support.tiny_base_models import BERT_HIDDEN_SIZE, tiny_bert

MAX_LENGTH = 24
LABELS = ["billing", "refund", "shipping"]
DEFAULTS = load_settings(environ={})


@pytest.fixture(scope="module")
def tokenizer() -> Any:
    return AutoTokenizer.from_pretrained(encoder_location(None), local_files_only=True)


def export_json(directory: Path) -> dict[str, Any]:
    return json.loads((directory / "export.json").read_text("utf-8"))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16], ids=["fp32", "fp16"])
def test_an_encoder_export_is_device_free_and_matches_eager(
    dtype: torch.dtype, tokenizer: Any, tmp_path: Path
) -> None:
    tolerance = parity_tolerance(DEFAULTS, dtype)
    encoder = SentenceEncoder(tiny_bert(5, max_position_embeddings=64))
    export = export_encoder(encoder, tokenizer, tmp_path, "query", MAX_LENGTH, tolerance, dtype)

    assert export.parity_max_abs_diff is not None and export.parity_max_abs_diff <= tolerance
    recorded = export_json(tmp_path)
    assert recorded["dtype"] == str(dtype).removeprefix("torch.")
    assert recorded["parity_devices"] == parity_devices()
    assert recorded["dim"] == BERT_HIDDEN_SIZE
    module = torch.jit.load(str(tmp_path / "model.pt"))
    assert device_pins(module) == []
    assert [argument.name for argument in module.forward.schema.arguments[1:]] == [
        "input_ids",
        "attention_mask",
    ]
    assert {parameter.dtype for parameter in module.bert.parameters()} == {dtype}
    parity = torch.load(tmp_path / PARITY_FILE, weights_only=True)
    assert parity["tolerance"] == tolerance
    with torch.inference_mode():
        output = module(**parity["batches"][2])
    assert output.dtype == torch.float32
    torch.testing.assert_close(output, parity["outputs"][2], atol=tolerance, rtol=0)


def test_a_half_precision_classifier_returns_float32_probabilities(
    tokenizer: Any, tmp_path: Path
) -> None:
    classifier = IntentClassifier(SentenceEncoder(tiny_bert(6)), len(LABELS))
    tolerance = parity_tolerance(DEFAULTS, torch.float16)
    export = export_classifier(
        classifier, tokenizer, LABELS, tmp_path, MAX_LENGTH, tolerance, torch.float16
    )
    assert export.dtype == "float16" and export.num_labels == len(LABELS)
    module = torch.jit.load(str(tmp_path / "model.pt"))
    assert device_pins(module) == []
    ids = torch.tensor([[101, 7592, 102, 0], [101, 7592, 2088, 102]])
    with torch.inference_mode():
        probabilities = module(ids, (ids > 0).long())
    assert probabilities.dtype == torch.float32 and probabilities.shape == (2, len(LABELS))
    torch.testing.assert_close(probabilities.sum(dim=1), torch.ones(2), atol=1e-6, rtol=0)


def test_a_base_model_other_than_bert_is_refused_naming_what_is_supported(
    tokenizer: Any, tmp_path: Path
) -> None:
    config = RobertaConfig(
        vocab_size=100,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
    )
    with pytest.raises(UnsupportedEncoder, match=r"type 'roberta'.*supported: BERT encoders"):
        export_encoder(SentenceEncoder(RobertaModel(config)), tokenizer, tmp_path, "query", 8, 1e-4)
    assert not (tmp_path / "model.pt").exists()


@pytest.mark.parametrize(
    ("instance_type", "gpu"),
    [
        ("ml.g4dn.xlarge", True),
        ("ml.g5.2xlarge", True),
        ("ml.g6e.xlarge", True),
        ("ml.p4d.24xlarge", True),
        ("ml.c5.2xlarge", False),
        ("ml.m5.xlarge", False),
        ("ml.inf2.xlarge", False),
        ("ml.g4ad.xlarge", False),  # AMD GPU: no CUDA
        ("g4dn.xlarge", False),
    ],
)
def test_nvidia_gpu_instance_families_are_recognised(instance_type: str, gpu: bool) -> None:
    assert has_nvidia_gpu(instance_type) is gpu


def test_auto_exports_half_precision_for_gpu_endpoints_only(tmp_path: Path) -> None:
    assert [export_dtype(DEFAULTS, kind) for kind in ("embedding", "classifier")] == [
        torch.float16,
        torch.float16,
    ]
    assert parity_tolerance(DEFAULTS, torch.float16) == 1e-2
    assert parity_tolerance(DEFAULTS, torch.float32) == 1e-4
    path = tmp_path / "settings.yaml"
    path.write_text(
        "sagemaker:\n"
        "  instance_types: {embedding: ml.c5.2xlarge, classifier: ml.g5.xlarge}\n"
        "training:\n"
        "  classifier: {export_dtype: float32}\n"
        "  autocomplete: {export_dtype: float16}\n",
        encoding="utf-8",
    )
    settings = load_settings(path, environ={})
    assert export_dtype(settings, "embedding") == torch.float32  # no GPU on ml.c5
    assert export_dtype(settings, "classifier") == torch.float32  # asked for, on a GPU
    assert export_dtype(settings, "autocomplete") == torch.float16  # asked for, no endpoint
