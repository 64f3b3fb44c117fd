"""Export a fine-tuned causal LM for serving: the scripted greedy generator
(`tasks.training.autocomplete.generator`) for Triton's PyTorch backend, and the tokenizer the
Python steps around it use."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from tokenizers import Tokenizer

from mme_factory.errors import MmeFactoryError
from mme_factory.records import AutocompleteExport
from tasks.training.autocomplete.examples import REPLY_MARKER, STOP_STRINGS
from tasks.training.autocomplete.generator import GreedyGenerator, script_generator
from tasks.training.autocomplete.llama_decoder import (
    ROPE_TYPES,
    LlamaDecoder,
    LlamaShape,
    UnsupportedLlamaConfig,
)
from tasks.training.export_dtype import dtype_name
from tasks.training.export_torchscript import (
    ExportParityError,
    check_parity,
    parity_batches,
    parity_devices,
)
from triton_models.autocomplete.code.v2.completion_text import left_padded as padded_rows


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
    max_new_tokens: int = 64,
    half_tolerance: float = 0.1,
) -> AutocompleteExport:
    """`model.pt` (the scripted generator at `dtype`), `tokenizer.json`, `config.json`.

    Checked three ways before export.json is written: the reference decoder's logits (prompt,
    then one cached step) against transformers'; the generator's logits, loaded on every
    available device, against transformers' in `tolerance` (`half_tolerance` when `dtype` is
    float16); and, in float32, its tokens against
    the reference decoder's greedy completions.
    """
    config = serving_config(model.config)
    directory.mkdir(parents=True, exist_ok=True)
    decoder = LlamaDecoder.from_state(config, model.state_dict())
    _check_rope(model, decoder)
    reference = _HuggingFaceLogits(model.eval())
    batches = parity_batches(int(config["vocab_size"]), min(max_length, 64))
    check_parity("autocomplete", reference, _DecoderLogits(decoder), batches, tolerance)
    generator = GreedyGenerator.from_decoder(decoder, [eos_id], max_new_tokens, dtype)
    path = directory / "model.pt"
    torch.jit.save(script_generator(generator), str(path))
    worst = 0.0
    devices = parity_devices()
    for device in devices:
        served = torch.jit.load(str(path), map_location=device)
        allowed = half_tolerance if dtype == torch.float16 else tolerance
        worst = max(worst, _check_generator_logits(reference, served, batches, allowed, device))
        if dtype == torch.float32:
            _check_generator_tokens(
                decoder, served, batches, eos_id, device, min(8, max_new_tokens)
            )
    _write_json(directory / "config.json", config)
    tokenizer.save(str(directory / "tokenizer.json"))
    export = AutocompleteExport(
        kind="autocomplete",
        max_length=max_length,
        eos_token_id=eos_id,
        prompt_format="{context}" + REPLY_MARKER + " {reply_start}",
        stop=list(STOP_STRINGS),
        bos_token_id=config.get("bos_token_id"),
        max_position_embeddings=int(config["max_position_embeddings"]),
        max_new_tokens=max_new_tokens,
        parity_max_abs_diff=worst,
        parity_devices=devices,
        dtype=dtype_name(dtype),
    )
    export.write(directory)
    return export


def reference_decoder(directory: Path) -> LlamaDecoder:
    """The float32 reference decoder of an export: its config.json and the generator's weights."""
    config = json.loads((directory / "config.json").read_text(encoding="utf-8"))
    served = torch.jit.load(str(directory / "model.pt"), map_location="cpu")
    skipped = {"inv_freq", "eos_ids"}
    state = {key: value for key, value in served.state_dict().items() if key not in skipped}
    return LlamaDecoder.from_state(config, state, str(directory / "model.pt"))


class _GeneratorLogits(torch.nn.Module):
    def __init__(self, served: torch.jit.ScriptModule, device: str) -> None:
        super().__init__()
        self.served = served
        self.device = device

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        logits = self.served.logits(input_ids.to(self.device), attention_mask.to(self.device))
        return logits.cpu() * attention_mask[..., None]


def _check_generator_logits(
    reference: torch.nn.Module,
    served: torch.jit.ScriptModule,
    batches: list[dict[str, torch.Tensor]],
    tolerance: float,
    device: str,
) -> float:
    name = f"autocomplete generator on {device}"
    return check_parity(name, reference, _GeneratorLogits(served, device), batches, tolerance)


def _check_generator_tokens(
    decoder: LlamaDecoder,
    served: torch.jit.ScriptModule,
    batches: list[dict[str, torch.Tensor]],
    eos_id: int,
    device: str,
    new_tokens: int = 8,
) -> None:
    """Each parity prompt, left-padded in one batch, completes as the reference decodes it."""
    batch = batches[-1]
    prompts = [
        ids[mask.bool()].tolist()
        for ids, mask in zip(batch["input_ids"], batch["attention_mask"], strict=True)
    ]
    ids, mask = left_padded(prompts, pad_id=0)
    limits = torch.full((len(prompts), 1), new_tokens, dtype=torch.int64)
    with torch.inference_mode():
        tokens, _ = served(ids.to(device), mask.to(device), limits.to(device))
    for row, prompt in enumerate(prompts):
        expected = decoder.generate(prompt, new_tokens, eos_token_id=eos_id).token_ids
        got = [token for token in tokens[row].tolist() if token >= 0]
        if got != expected:
            raise ExportParityError(
                f"autocomplete generator on {device}: prompt {row} ({len(prompt)} tokens) "
                f"completes as {got}, the reference decoder as {expected}; "
                "the export is not usable"
            )


def left_padded(prompts: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The text step's left padding (`completion_text.left_padded`), as tensors."""
    ids, mask = padded_rows(prompts, pad_id)
    return torch.from_numpy(ids), torch.from_numpy(mask)
