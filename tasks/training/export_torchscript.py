"""Export trained models in the layout the packager reads, each checked against the eager model.

Encoders and the classifier become TorchScript (`model.pt`: token ids and attention mask in;
embedding or probabilities out). The autocomplete model is exported as weights plus code:
`config.json` + `weights.pt` run by the pure-torch decoder in triton_models/autocomplete/code/,
because a traced graph cannot carry a growing key/value cache and the Triton environment has no
transformers. Every export ends with a parity check that raises when outputs differ.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from tokenizers import Tokenizer

from mme_factory.errors import MmeFactoryError
from mme_factory.records import AutocompleteExport, ClassifierExport, EmbeddingExport
from tasks.training.autocomplete.examples import REPLY_MARKER, STOP_STRINGS
from tasks.training.encoders import Probabilities, SentenceEncoder
from tasks.training.known_warnings import known_warnings_silenced
from triton_models.autocomplete.code.v1.llama_decoder import (
    ROPE_TYPES,
    LlamaDecoder,
    LlamaShape,
    UnsupportedLlamaConfig,
)

PARITY_FILE = "parity.pt"  # the parity batches and the eager model's outputs on them


class ExportParityError(MmeFactoryError):
    """An exported model's outputs differ from the eager model's beyond the tolerance."""


class UnsupportedForServing(MmeFactoryError):
    """A causal LM whose config the serving decoder would not compute as transformers does."""


def parity_batches(
    vocab_size: int, max_length: int, seed: int = 0
) -> list[dict[str, torch.Tensor]]:
    """Batches of mixed lengths, from one token up to `max_length`, right-padded."""
    generator = torch.Generator().manual_seed(seed)
    low = 1000 if vocab_size > 2000 else 1  # above BERT's special and unused tokens
    batches = []
    for lengths in ([1], [max_length], [1, 3, max_length // 2, max_length, 7, 2, 30, 12]):
        lengths = [min(length, max_length) for length in lengths]
        width = max(lengths)
        ids = torch.zeros((len(lengths), width), dtype=torch.long)
        mask = torch.zeros((len(lengths), width), dtype=torch.long)
        for row, length in enumerate(lengths):
            ids[row, :length] = torch.randint(low, vocab_size, (length,), generator=generator)
            mask[row, :length] = 1
        batches.append({"input_ids": ids, "attention_mask": mask})
    return batches


def check_parity(
    name: str,
    eager: torch.nn.Module,
    exported: torch.nn.Module,
    batches: list[dict[str, torch.Tensor]],
    tolerance: float,
    record: Path | None = None,
) -> float:
    """The largest difference between eager and exported outputs; raises beyond `tolerance`.

    The tolerance is relative to the largest output magnitude when that exceeds 1: embeddings
    and probabilities are compared absolutely, a decoder's logits (tens, for a pretrained model,
    where float32 rounding in the cached step alone reaches 1e-4) by their scale.
    `record`: where to save the batches and the eager outputs (`parity.pt`), so the export can
    be checked again later, e.g. under another libtorch.
    """
    worst = 0.0
    scale = 1.0
    expected = []
    with torch.inference_mode():
        for batch in batches:
            reference = eager(**batch)
            difference = (reference - exported(**batch)).abs().max().item()
            worst = max(worst, difference)
            scale = max(scale, reference.abs().max().item())
            expected.append(reference.clone())
    if not worst <= tolerance * scale:
        relative = f" ({worst / scale:.2e} of the largest output, {scale:.3g})" if scale > 1 else ""
        raise ExportParityError(
            f"{name}: exported output differs from eager by {worst:.2e}{relative} "
            f"(tolerance {tolerance:.0e}); the export is not usable"
        )
    if record is not None:
        parity = {"batches": batches, "outputs": expected, "tolerance": tolerance}
        torch.save(parity, record)
    return worst


def _trace(module: torch.nn.Module, path: Path, max_length: int) -> torch.jit.ScriptModule:
    vocab = int(_transformer_of(module).config.vocab_size)
    # Traced with padding present, so the attention-mask path is the one recorded.
    example = parity_batches(vocab, max_length, seed=1)[2]
    with torch.inference_mode(), known_warnings_silenced():
        traced = torch.jit.trace(
            module.eval(), (example["input_ids"], example["attention_mask"]), check_trace=False
        )
        torch.jit.save(traced, str(path))
        return torch.jit.load(str(path))


def _transformer_of(module: torch.nn.Module) -> Any:
    while not hasattr(module, "transformer"):
        module = next(child for child in module.children())
    return module.transformer


def _write_tokenizer(tokenizer: Any, path: Path, max_length: int) -> None:
    """tokenizer.json with no fixed padding (the server pads to the longest) and truncation."""
    backend = Tokenizer.from_str(tokenizer.backend_tokenizer.to_str())
    backend.no_padding()
    backend.enable_truncation(max_length)
    backend.save(str(path))


def _write_json(path: Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def export_encoder(
    encoder: SentenceEncoder,
    tokenizer: Any,
    directory: Path,
    role: str,
    max_length: int,
    tolerance: float,
) -> EmbeddingExport:
    directory.mkdir(parents=True, exist_ok=True)
    traced = _trace(encoder, directory / "model.pt", max_length)
    vocab = int(encoder.transformer.config.vocab_size)
    worst = check_parity(
        f"embedding-{role}",
        encoder,
        traced,
        parity_batches(vocab, max_length),
        tolerance,
        directory / PARITY_FILE,
    )
    _write_tokenizer(tokenizer, directory / "tokenizer.json", max_length)
    export = EmbeddingExport(
        kind="embedding",
        role=role,
        max_length=max_length,
        dim=int(encoder.transformer.config.hidden_size),
        parity_max_abs_diff=worst,
    )
    export.write(directory)
    return export


def export_classifier(
    classifier: torch.nn.Module,
    tokenizer: Any,
    labels: list[str],
    directory: Path,
    max_length: int,
    tolerance: float,
) -> ClassifierExport:
    directory.mkdir(parents=True, exist_ok=True)
    probabilities = Probabilities(classifier).eval()
    traced = _trace(probabilities, directory / "model.pt", max_length)
    vocab = int(classifier.encoder.transformer.config.vocab_size)
    worst = check_parity(
        "classifier",
        probabilities,
        traced,
        parity_batches(vocab, max_length),
        tolerance,
        directory / PARITY_FILE,
    )
    _write_tokenizer(tokenizer, directory / "tokenizer.json", max_length)
    (directory / "labels.txt").write_text("".join(f"{label}\n" for label in labels), "utf-8")
    export = ClassifierExport(
        kind="classifier",
        max_length=max_length,
        num_labels=len(labels),
        parity_max_abs_diff=worst,
    )
    export.write(directory)
    return export


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
