"""Export a fine-tuned causal LM for serving (see `tasks.training.autocomplete.generator`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from tokenizers import Tokenizer

from mme_factory.errors import MmeFactoryError
from mme_factory.records import AutocompleteExport
from tasks.training.autocomplete.examples import REPLY_MARKER, STOP_STRINGS
from tasks.training.autocomplete.llama_decoder import (
    ROPE_TYPES,
    LlamaDecoder,
    LlamaShape,
    UnsupportedLlamaConfig,
)
from tasks.training.export_torchscript import ExportParityError, check_parity, parity_batches


class UnsupportedForServing(MmeFactoryError):
    """A causal LM whose config the serving decoder would not compute as transformers does."""


def _write_json(path: Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")


class _HuggingFaceLogits(torch.nn.Module):
    def __init__(self, model: Any) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        logits = self.model(input_ids=input_ids, attention_mask=attention_mask).logits
        return logits * attention_mask[..., None]


class _DecoderLogits(torch.nn.Module):
    """The serving decoder, run as the server does: prompt first, then one cached step."""

    def __init__(self, decoder: LlamaDecoder) -> None:
        super().__init__()
        self.decoder = decoder

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        width = input_ids.shape[1]
        if width == 1:
            logits, _ = self.decoder(input_ids, None, attention_mask)
        else:
            head, cache = self.decoder(input_ids[:, :-1], None, attention_mask[:, :-1])
            tail, _ = self.decoder(input_ids[:, -1:], cache, attention_mask)
            logits = torch.cat([head, tail], dim=1)
        return logits * attention_mask[..., None]


def serving_config(model_config: Any) -> dict[str, Any]:
    """config.json of the serving decoder: every value it computes with, RoPE normalised.

    Raises `UnsupportedForServing` before anything is written when the decoder would serve a
    model that differs from transformers' (another RoPE type, activation or architecture).
    """
    try:
        return LlamaShape.from_config(model_config.to_dict()).to_config()
    except UnsupportedLlamaConfig as error:
        raise UnsupportedForServing(
            f"autocomplete export: the serving decoder does not support {error}; choose a "
            f"Llama-architecture base model (SiLU, RoPE types {', '.join(ROPE_TYPES)})"
        ) from None


def _check_rope(model: Any, decoder: LlamaDecoder) -> None:
    """The decoder's RoPE frequencies equal transformers' (positions past the parity batches)."""
    rotary = getattr(getattr(model, "model", None), "rotary_emb", None)
    if rotary is None:
        return
    expected = rotary.inv_freq.detach().float().cpu()
    difference = (expected - decoder.inv_freq).abs().max().item() / expected.abs().max().item()
    scaling = float(getattr(rotary, "attention_scaling", 1.0))
    if difference > 1e-6 or scaling != decoder.attention_scaling:
        raise ExportParityError(
            f"autocomplete: RoPE differs from transformers' (inverse frequencies by "
            f"{difference:.2e} relative, attention scaling {decoder.attention_scaling} vs "
            f"{scaling}); the export is not usable"
        )


def export_autocomplete(
    model: Any,
    tokenizer: Tokenizer,
    eos_id: int,
    directory: Path,
    max_length: int,
    tolerance: float,
    dtype: torch.dtype = torch.float32,
) -> AutocompleteExport:
    config = serving_config(model.config)
    directory.mkdir(parents=True, exist_ok=True)
    _write_json(directory / "config.json", config)
    state = {key: value.detach().float().contiguous() for key, value in model.state_dict().items()}
    torch.save(state, directory / "weights.pt")
    tokenizer.save(str(directory / "tokenizer.json"))
    decoder = LlamaDecoder.from_files(directory / "config.json", directory / "weights.pt")
    _check_rope(model, decoder)
    worst = check_parity(
        "autocomplete",
        _HuggingFaceLogits(model.eval()),
        _DecoderLogits(decoder),
        parity_batches(int(config["vocab_size"]), min(max_length, 64)),
        tolerance,
    )
    export = AutocompleteExport(
        kind="autocomplete",
        max_length=max_length,
        eos_token_id=eos_id,
        prompt_format="{context}" + REPLY_MARKER + " {reply_start}",
        stop=list(STOP_STRINGS),
        parity_max_abs_diff=worst,
    )
    export.write(directory)
    return export
