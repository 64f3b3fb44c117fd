"""Torch modules for training and export: a pooled sentence encoder, an intent classifier."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn


def mean_pool(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)


class SentenceEncoder(nn.Module):
    """Token ids and attention mask in; mean-pooled, L2-normalised embedding out."""

    def __init__(self, transformer: nn.Module) -> None:
        super().__init__()
        self.transformer = transformer

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = self.transformer(input_ids=input_ids, attention_mask=attention_mask)[0]
        return nn.functional.normalize(mean_pool(hidden, attention_mask), p=2.0, dim=-1)

    def copy(self) -> SentenceEncoder:
        return copy.deepcopy(self)


class IntentClassifier(nn.Module):
    """A sentence encoder with a linear head; `forward` returns logits."""

    def __init__(self, encoder: SentenceEncoder, num_labels: int) -> None:
        super().__init__()
        self.encoder = encoder
        dim = int(encoder.transformer.config.hidden_size)
        self.head = nn.Linear(dim, num_labels)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(input_ids, attention_mask))


class Probabilities(nn.Module):
    """Softmax over the classifier's logits: what the exported classifier computes."""

    def __init__(self, classifier: IntentClassifier) -> None:
        super().__init__()
        self.classifier = classifier

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.classifier(input_ids, attention_mask), dim=-1)


def frozen_layer_count(transformer: nn.Module, requested: int) -> int:
    """The lowest layers to freeze: as many as requested, but never the top one."""
    return max(0, min(requested, len(transformer.encoder.layer) - 1))


def lower_modules(transformer: nn.Module, layers: int) -> list[nn.Module]:
    """The embedding layer and the first `layers` transformer layers (never the top one); none
    when `layers` is 0."""
    layers = frozen_layer_count(transformer, layers)
    if layers == 0:
        return []
    return [transformer.embeddings, *transformer.encoder.layer[:layers]]


def trainable_parameters(
    encoder: SentenceEncoder, train_token_embeddings: bool, frozen_layers: int = 0
) -> list[nn.Parameter]:
    """The encoder's parameters to fine-tune; the token-embedding table stays frozen unless asked.

    That table holds half of a MiniLM's weights, and its gradient and optimiser update cost a
    sixth of each step, while the words of a customer's texts barely move it. With
    `frozen_layers`, the whole embedding layer and that many of the lowest transformer layers
    stay frozen too: back-propagation then stops at the first trained layer.
    """
    transformer = encoder.transformer
    transformer.get_input_embeddings().weight.requires_grad_(train_token_embeddings)
    for module in lower_modules(transformer, frozen_layers):
        module.requires_grad_(False)
    return [p for p in encoder.parameters() if p.requires_grad]


def tokenize(tokenizer: Any, texts: Sequence[str], max_length: int) -> dict[str, torch.Tensor]:
    """Pad to the longest text in the batch, truncate at `max_length` (never a fixed 128)."""
    batch = tokenizer(
        list(texts), padding="longest", truncation=True, max_length=max_length, return_tensors="pt"
    )
    return {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}


@torch.inference_mode()
def embed(
    encoder: nn.Module, tokenizer: Any, texts: Sequence[str], max_length: int, batch_size: int = 64
) -> torch.Tensor:
    """Embeddings (or logits) of `texts`, in batches sorted by length for speed, original order."""
    if not texts:
        return torch.empty(0)
    was_training = encoder.training
    encoder.eval()
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    outputs: list[torch.Tensor] = []
    for start in range(0, len(order), batch_size):
        chunk = [texts[i] for i in order[start : start + batch_size]]
        outputs.append(encoder(**tokenize(tokenizer, chunk, max_length)))
    encoder.train(was_training)
    stacked = torch.cat(outputs)
    result = torch.empty_like(stacked)
    result[torch.tensor(order)] = stacked
    return result
