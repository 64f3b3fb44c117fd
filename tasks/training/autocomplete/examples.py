"""Autocomplete examples as token ids: prompt = conversation so far, target = the agent's reply."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

END_OF_TEXT = "<|endoftext|>"
REPLY_MARKER = "\nAgent:"
STOP_STRINGS = ("\nCustomer", "\nAgent:")
IGNORE = -100


def prompt_text(context: str, reply_start: str = "") -> str:
    """The text a model continues: the conversation, then the agent's reply so far."""
    start = f" {reply_start.strip()}" if reply_start.strip() else ""
    return f"{context.rstrip()}{REPLY_MARKER}{start}"


def train_tokenizer(texts: Iterable[str], vocab_size: int) -> Tokenizer:
    """A byte-level BPE tokenizer learnt from the customer's own conversations."""
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        special_tokens=[END_OF_TEXT],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(texts, trainer)
    return tokenizer


@dataclass(frozen=True)
class Example:
    input_ids: list[int]
    labels: list[int]


def encode_example(
    tokenizer: Tokenizer, context: str, reply: str, eos_id: int, max_length: int
) -> Example:
    """Loss only on the reply and its end token; the context is cut from the left if too long."""
    prompt = tokenizer.encode(prompt_text(context), add_special_tokens=False).ids
    target = [*tokenizer.encode(f" {reply.strip()}", add_special_tokens=False).ids, eos_id]
    target = target[: max_length - 1]
    prompt = prompt[-(max_length - len(target)) :]
    return Example(prompt + target, [IGNORE] * len(prompt) + target)


def collate(examples: list[Example], pad_id: int) -> dict[str, torch.Tensor]:
    width = max(len(example.input_ids) for example in examples)
    ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    labels = torch.full((len(examples), width), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(examples), width), dtype=torch.long)
    for row, example in enumerate(examples):
        size = len(example.input_ids)
        ids[row, :size] = torch.tensor(example.input_ids)
        labels[row, :size] = torch.tensor(example.labels)
        mask[row, :size] = 1
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}
