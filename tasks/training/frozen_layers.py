"""Training inputs for an encoder whose lowest layers stay frozen: their output for each training
text is computed once per run, and each step runs only the layers above.

The frozen layers never change while training, so running them again every epoch repeats the
same work (with dropout in them, which is all that differs); cached, a step with the lower half
frozen costs its forward through the upper half and its backward, not the whole model's forward.
With no layer frozen, each step runs the whole encoder on the texts' token ids.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from transformers.masking_utils import create_bidirectional_mask

from tasks.training.encoders import SentenceEncoder, frozen_layer_count, mean_pool
from tasks.training.token_batches import TokenizedTexts

CACHE_BATCH = 64


def attention_mask_for(transformer: nn.Module, hidden: torch.Tensor, mask: torch.Tensor) -> Any:
    """The mask the transformer's layers take, as its own forward builds it."""
    return create_bidirectional_mask(
        config=transformer.config, inputs_embeds=hidden, attention_mask=mask
    )


def run_layers(
    layers: Sequence[nn.Module], transformer: nn.Module, hidden: torch.Tensor, mask: torch.Tensor
) -> torch.Tensor:
    layer_mask = attention_mask_for(transformer, hidden, mask)
    for layer in layers:
        hidden = layer(hidden, layer_mask)
    return hidden


@torch.no_grad()
def lower_outputs(
    transformer: nn.Module, tokens: TokenizedTexts, frozen_layers: int
) -> list[torch.Tensor]:
    """Per text, the (tokens, hidden size) output of the embedding layer and the lowest
    `frozen_layers` layers, in eval mode."""
    was_training = transformer.training
    transformer.eval()
    lower = transformer.encoder.layer[:frozen_layers]
    order = sorted(range(len(tokens)), key=lambda i: len(tokens.ids[i]))
    outputs: list[torch.Tensor] = [torch.empty(0)] * len(tokens)
    for start in range(0, len(order), CACHE_BATCH):
        chunk = order[start : start + CACHE_BATCH]
        inputs = tokens.batch(chunk)
        hidden = transformer.embeddings(input_ids=inputs["input_ids"])
        hidden = run_layers(lower, transformer, hidden, inputs["attention_mask"])
        for row, index in enumerate(chunk):
            outputs[index] = hidden[row, : len(tokens.ids[index])].clone()
    transformer.train(was_training)
    return outputs


@dataclass(frozen=True)
class EncoderInputs:
    """A run's training texts, ready for the encoder's trained layers; `encode` embeds a batch."""

    tokens: TokenizedTexts
    frozen_layers: int
    lower: list[torch.Tensor]  # per text, the frozen layers' output; empty when none is frozen

    @classmethod
    def of(
        cls, encoder: SentenceEncoder, tokens: TokenizedTexts, frozen_layers: int
    ) -> EncoderInputs:
        frozen = frozen_layer_count(encoder.transformer, frozen_layers)
        lower = lower_outputs(encoder.transformer, tokens, frozen) if frozen else []
        return cls(tokens, frozen, lower)

    def encode(self, encoder: SentenceEncoder, indices: Sequence[int]) -> torch.Tensor:
        """Embeddings of the texts at `indices`, as `encoder` computes them."""
        if not self.frozen_layers:
            return encoder(**self.tokens.batch(indices))
        hidden, mask = self.padded_lower(indices)
        transformer = encoder.transformer
        upper = transformer.encoder.layer[self.frozen_layers :]
        hidden = run_layers(upper, transformer, hidden, mask)
        return nn.functional.normalize(mean_pool(hidden, mask), p=2.0, dim=-1)

    def padded_lower(self, indices: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
        rows = [self.lower[int(i)] for i in indices]
        longest = max(len(row) for row in rows)
        hidden = torch.zeros(len(rows), longest, rows[0].shape[-1])
        mask = torch.zeros(len(rows), longest, dtype=torch.long)
        for number, row in enumerate(rows):
            hidden[number, : len(row)] = row
            mask[number, : len(row)] = 1
        return hidden, mask
