"""Any Llama-architecture causal LM exports for the serving decoder and passes parity.

Each tiny model below sets a non-default value of something `LlamaForCausalLM`'s forward
depends on; the export must carry it into config.json (normalised) and the decoder must
reproduce transformers' logits, or the export fails.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from tokenizers import Tokenizer, models
from transformers import LlamaConfig, LlamaForCausalLM

from tasks.training.autocomplete.export import (
    UnsupportedForServing,
    export_autocomplete,
    left_padded,
)
from tasks.training.autocomplete.llama_decoder import (
    LlamaDecoder,
    LlamaShape,
    UnsupportedLlamaConfig,
)
from tasks.training.export_torchscript import ExportParityError

VOCAB = 120
TOLERANCE = 1e-4

BASE = {
    "vocab_size": VOCAB,
    "hidden_size": 48,
    "intermediate_size": 80,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "max_position_embeddings": 128,
}
# Every value differs from LlamaConfig's default: head_dim 20 != 48 / 4, 2 key/value heads for
# 4 query heads, untied embeddings, biases in attention and MLP.
NON_DEFAULT = BASE | {
    "head_dim": 20,
    "num_key_value_heads": 2,
    "rms_norm_eps": 1e-3,
    "tie_word_embeddings": False,
    "attention_bias": True,
    "mlp_bias": True,
}
ROPES = {
    "theta": {"rope_type": "default", "rope_theta": 500.0},
    "linear": {"rope_type": "linear", "rope_theta": 1000.0, "factor": 3.0},
    # A short original context puts the frequencies in all three llama3 bands.
    "llama3": {
        "rope_type": "llama3",
        "rope_theta": 500.0,
        "factor": 8.0,
        "low_freq_factor": 1.0,
        "high_freq_factor": 4.0,
        "original_max_position_embeddings": 64,
    },
}


def tiny_llama(rope: dict[str, Any], **overrides: Any) -> LlamaForCausalLM:
    torch.manual_seed(3)
    # Weights ten times the usual scale: at 0.02 the logits are so small that a wrong RoPE
    # changes them by about the tolerance; at 0.2 by several units.
    config = LlamaConfig(
        **(NON_DEFAULT | overrides), rope_parameters=dict(rope), initializer_range=0.2
    )
    model = LlamaForCausalLM(config).eval()
    with torch.no_grad():  # transformers initialises biases to zero; make them count
        for name, parameter in model.named_parameters():
            if name.endswith("bias"):
                parameter.normal_(0.0, 0.2)
            if name.endswith("norm.weight"):
                parameter.uniform_(0.5, 1.5)
    return model


def word_tokenizer() -> Tokenizer:
    return Tokenizer(models.WordLevel({f"w{i}": i for i in range(VOCAB)}, unk_token="w0"))


def export(model: LlamaForCausalLM, directory: Path) -> dict[str, Any]:
    return export_autocomplete(model, word_tokenizer(), 2, directory, 96, TOLERANCE)


def exported_config(directory: Path) -> dict[str, Any]:
    return json.loads((directory / "config.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("rope", list(ROPES))
def test_non_default_llama_exports_within_parity(tmp_path: Path, rope: str) -> None:
    model = tiny_llama(ROPES[rope])
    summary = export(model, tmp_path)
    assert summary.parity_max_abs_diff <= TOLERANCE
    config = exported_config(tmp_path)
    assert config["rope_parameters"] == ROPES[rope]
    assert {key: config[key] for key in NON_DEFAULT} == NON_DEFAULT
    assert config["hidden_act"] == "silu"


def test_exported_theta_is_the_models(tmp_path: Path) -> None:
    model = tiny_llama({"rope_type": "default", "rope_theta": 123_456.0})
    export(model, tmp_path)
    assert exported_config(tmp_path)["rope_parameters"]["rope_theta"] == 123_456.0
    assert model.config.rope_parameters["rope_theta"] == 123_456.0


def test_export_is_the_scripted_generator_and_no_loose_weights(tmp_path: Path) -> None:
    model = tiny_llama(ROPES["theta"])
    export(model, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "config.json",
        "export.json",
        "model.pt",
        "tokenizer.json",
    ]
    served = torch.jit.load(str(tmp_path / "model.pt"))
    assert isinstance(served, torch.jit.ScriptModule)
    decoder = LlamaDecoder.from_state(exported_config(tmp_path), model.state_dict())
    prompts = [[5, 9, 17], [3], list(range(10, 40))]
    ids, mask = left_padded(prompts, pad_id=0)
    limits = torch.tensor([[12], [4], [0]])
    with torch.inference_mode():
        tokens, finish = served(ids, mask, limits)
    for row, prompt in enumerate(prompts):
        expected = decoder.generate(prompt, int(limits[row]), eos_token_id=2).token_ids
        assert [token for token in tokens[row].tolist() if token >= 0] == expected
    assert finish[2].item() == 0 and tokens[2].eq(-1).all()


def test_float16_export_keeps_float32_logits_within_its_tolerance(tmp_path: Path) -> None:
    model = tiny_llama(ROPES["theta"])
    summary = export_autocomplete(
        model, word_tokenizer(), 2, tmp_path, 96, 5e-2, dtype=torch.float16
    )
    served = torch.jit.load(str(tmp_path / "model.pt"))
    assert served.lm_head.weight.dtype == torch.float16
    assert summary.parity_max_abs_diff > 0
    ids, mask = left_padded([[5, 9, 17]], pad_id=0)
    assert served.logits(ids, mask).dtype == torch.float32


@pytest.mark.parametrize("rope", ["linear", "llama3"])
def test_decoder_without_the_scaling_would_fail_parity(tmp_path: Path, rope: str) -> None:
    """The scaling is not a no-op at the parity batches' lengths: dropping it is caught."""
    model = tiny_llama(ROPES[rope])
    export(model, tmp_path)
    config = exported_config(tmp_path)
    config["rope_parameters"] = {"rope_type": "default", "rope_theta": ROPES[rope]["rope_theta"]}
    decoder = LlamaDecoder.from_state(config, model.state_dict())
    ids = torch.randint(0, VOCAB, (1, 64), generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        difference = (model(input_ids=ids).logits - decoder(ids)[0]).abs().max().item()
    assert difference > 1.0


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"rope_parameters": {"rope_type": "yarn", "rope_theta": 1e4, "factor": 2.0}}, "'yarn'"),
        (
            {"rope_parameters": {"rope_type": "dynamic", "rope_theta": 1e4, "factor": 2.0}},
            "'dynamic'",
        ),
        ({"hidden_act": "gelu"}, "hidden_act 'gelu'"),
    ],
)
def test_unsupported_config_fails_at_export_naming_it(
    tmp_path: Path, overrides: dict[str, Any], named: str
) -> None:
    rope = overrides.pop("rope_parameters", ROPES["theta"])
    model = tiny_llama(rope, **overrides)
    with pytest.raises(UnsupportedForServing, match=named) as raised:
        export(model, tmp_path / "export")
    assert "serving decoder does not support" in str(raised.value)
    assert not (tmp_path / "export").exists(), "nothing is written for a refused model"


def test_rope_mismatch_with_transformers_fails_the_export(tmp_path: Path) -> None:
    model = tiny_llama(ROPES["theta"])
    model.model.rotary_emb.inv_freq.mul_(1.01)  # as if transformers computed another RoPE
    with pytest.raises(ExportParityError, match="RoPE differs"):
        export(model, tmp_path)


def test_transformers_4_configs_read_the_same_rope() -> None:
    older = BASE | {"rope_theta": 2_000.0, "rope_scaling": {"type": "linear", "factor": 2.0}}
    newer = BASE | {"rope_parameters": {"rope_type": "linear", "rope_theta": 2e3, "factor": 2}}
    assert LlamaShape.from_config(older) == LlamaShape.from_config(newer)
    assert LlamaShape.from_config(older).rope.to_config() == {
        "rope_type": "linear",
        "rope_theta": 2_000.0,
        "factor": 2.0,
    }


def test_a_config_without_rope_theta_is_refused_not_defaulted() -> None:
    with pytest.raises(UnsupportedLlamaConfig, match="no RoPE theta"):
        LlamaShape.from_config(BASE)
