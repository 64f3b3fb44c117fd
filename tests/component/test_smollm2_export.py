"""The pretrained SmolLM2-135M-Instruct (RoPE theta 100,000, tied, grouped KV) exports and
passes the parity check against transformers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tasks.training.autocomplete.export import export_autocomplete
from tasks.training.base_models import load_causal_lm
from test_support.smollm2 import smollm2_base_models

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

TOLERANCE = 1e-4  # the pipeline's export_parity_tolerance


def test_smollm2_exports_within_parity(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    model, tokenizer = load_causal_lm("smollm2", smollm2_base_models(request.config.cache))
    summary = export_autocomplete(
        model, tokenizer.backend_tokenizer, int(tokenizer.eos_token_id), tmp_path, 192, TOLERANCE
    )
    assert summary.parity_max_abs_diff <= TOLERANCE
    config = json.loads((tmp_path / "config.json").read_text(encoding="utf-8"))
    assert config["rope_parameters"] == {"rope_type": "default", "rope_theta": 100_000.0}
    assert config["num_key_value_heads"] == 3 and config["tie_word_embeddings"] is True
    print(f"SmolLM2 export parity: {summary.parity_max_abs_diff:.2e}")
