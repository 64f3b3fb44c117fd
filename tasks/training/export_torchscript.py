"""Export trained models in the layout the packager reads, each checked against the eager model.

Encoders and the classifier become TorchScript (`model.pt`: token ids and attention mask in;
embedding or probabilities out); the autocomplete generator's export is in
`tasks.training.autocomplete.export`. Every export ends with a parity check that raises when
outputs differ.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from tokenizers import Tokenizer

from mme_factory.errors import MmeFactoryError
from mme_factory.records import ClassifierExport, EmbeddingExport
from tasks.training.encoders import Probabilities, SentenceEncoder
from tasks.training.known_warnings import known_warnings_silenced

PARITY_FILE = "parity.pt"  # the parity batches and the eager model's outputs on them


class ExportParityError(MmeFactoryError):
    """An exported model's outputs differ from the eager model's beyond the tolerance."""


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
