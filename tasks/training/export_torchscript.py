"""Export trained models in the layout the packager reads, each checked against the eager model.

Encoders and the classifier become TorchScript (`model.pt`: token ids and attention mask in;
embedding or probabilities out), scripted from `tasks.training.serving_modules` so that no
device is fixed in the graph, in float32 or float16; the autocomplete generator's export is in
`tasks.training.autocomplete.export`. Every export ends with a parity check that raises when
outputs differ: the saved `model.pt` is loaded onto every device this machine has and compared
there with the eager model's outputs on the CPU.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from tokenizers import Tokenizer

from mme_factory.errors import MmeFactoryError
from mme_factory.records import ClassifierExport, EmbeddingExport
from tasks.training.encoders import IntentClassifier, Probabilities, SentenceEncoder
from tasks.training.export_dtype import dtype_name
from tasks.training.serving_modules import scripted_classifier, scripted_encoder

MODEL_FILE = "model.pt"
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


def parity_devices() -> list[str]:
    return ["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"]


class _Loaded(torch.nn.Module):
    """A saved TorchScript file loaded onto `device`: inputs moved there, output back."""

    def __init__(self, path: Path, device: str) -> None:
        super().__init__()
        self.device = device
        self.module = torch.jit.load(str(path), map_location=device).eval()

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        output = self.module(input_ids.to(self.device), attention_mask.to(self.device))
        return output.cpu()


def check_saved_parity(
    name: str,
    eager: torch.nn.Module,
    path: Path,
    batches: list[dict[str, torch.Tensor]],
    tolerance: float,
    record: Path | None = None,
) -> tuple[float, list[str]]:
    """`check_parity` of the file at `path` on each device of `parity_devices()`.

    Returns the largest difference on any device and the devices checked.
    """
    devices = parity_devices()
    worst = 0.0
    for device in devices:
        loaded = _Loaded(path, device)
        saved = record if device == "cpu" else None
        difference = check_parity(f"{name} on {device}", eager, loaded, batches, tolerance, saved)
        worst = max(worst, difference)
    return worst, devices


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
    dtype: torch.dtype = torch.float32,
) -> EmbeddingExport:
    directory.mkdir(parents=True, exist_ok=True)
    torch.jit.save(scripted_encoder(encoder, dtype), str(directory / MODEL_FILE))
    vocab = int(encoder.transformer.config.vocab_size)
    worst, devices = check_saved_parity(
        f"embedding-{role}",
        encoder.eval(),
        directory / MODEL_FILE,
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
        parity_devices=devices,
        dtype=dtype_name(dtype),
    )
    export.write(directory)
    return export


def export_classifier(
    classifier: IntentClassifier,
    tokenizer: Any,
    labels: list[str],
    directory: Path,
    max_length: int,
    tolerance: float,
    dtype: torch.dtype = torch.float32,
) -> ClassifierExport:
    directory.mkdir(parents=True, exist_ok=True)
    torch.jit.save(scripted_classifier(classifier, dtype), str(directory / MODEL_FILE))
    vocab = int(classifier.encoder.transformer.config.vocab_size)
    worst, devices = check_saved_parity(
        "classifier",
        Probabilities(classifier).eval(),
        directory / MODEL_FILE,
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
        parity_devices=devices,
        dtype=dtype_name(dtype),
    )
    export.write(directory)
    return export
