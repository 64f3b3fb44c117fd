"""Texts tokenized once for a whole training run, then padded batch by batch to the batch's
longest text: a training loop's epochs reuse the token ids instead of tokenizing every batch."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch


@dataclass(frozen=True)
class TokenizedTexts:
    ids: list[list[int]]  # per text, truncated, not padded
    pad_id: int

    @classmethod
    def of(cls, tokenizer: Any, texts: Sequence[str], max_length: int) -> TokenizedTexts:
        encoded = tokenizer(list(texts), truncation=True, max_length=max_length)
        return cls(list(encoded["input_ids"]), int(tokenizer.pad_token_id or 0))

    def __len__(self) -> int:
        return len(self.ids)

    def lengths(self) -> list[int]:
        return [len(ids) for ids in self.ids]

    def batch(self, indices: Sequence[int]) -> dict[str, torch.Tensor]:
        """`input_ids` and `attention_mask` of the texts at `indices`, right-padded to the
        longest of them, as `encoders.tokenize` pads them."""
        rows = [self.ids[int(i)] for i in indices]
        longest = max(len(ids) for ids in rows)
        input_ids = torch.full((len(rows), longest), self.pad_id, dtype=torch.long)
        attention_mask = torch.zeros((len(rows), longest), dtype=torch.long)
        for row, ids in enumerate(rows):
            input_ids[row, : len(ids)] = torch.tensor(ids, dtype=torch.long)
            attention_mask[row, : len(ids)] = 1
        return {"input_ids": input_ids, "attention_mask": attention_mask}


@dataclass(frozen=True)
class TokenizedSide:
    """One side of a run's training pairs (queries, or positives): each distinct text tokenized
    once, and which of them each pair names."""

    tokens: TokenizedTexts
    text_of_pair: list[int]

    @classmethod
    def of(cls, tokenizer: Any, texts: Sequence[str], max_length: int) -> TokenizedSide:
        distinct = list(dict.fromkeys(texts))
        position = {text: index for index, text in enumerate(distinct)}
        tokens = TokenizedTexts.of(tokenizer, distinct, max_length)
        return cls(tokens, [position[text] for text in texts])

    def distinct_texts(self, pairs: Sequence[int]) -> tuple[list[int], torch.Tensor]:
        """The distinct texts (indices into `tokens`) that the pairs at `pairs` name, and each
        pair's row among them."""
        named = [self.text_of_pair[int(pair)] for pair in pairs]
        distinct = list(dict.fromkeys(named))
        row = {text: index for index, text in enumerate(distinct)}
        return distinct, torch.tensor([row[text] for text in named])
