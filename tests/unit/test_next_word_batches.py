"""Next-word evaluation in left-padded batches gives what one prompt at a time gives."""

from __future__ import annotations

import pandas as pd
import torch

from mme_factory.settings.training import AutocompleteTraining, CompactDecoder
from tasks.training.autocomplete.evaluate import (
    WORD_TOKENS,
    greedy_continuation,
    greedy_continuations,
)
from tasks.training.autocomplete.examples import END_OF_TEXT, prompt_text
from tasks.training.autocomplete.finetune import compact_decoder

CONTEXTS = [
    "Customer: Hi",
    "Customer: I would like a large iced latte with oat milk please",
    "Customer: can I get a chai\nAgent: Sure, what size?\nCustomer: medium",
    "Customer: Hello, one espresso",
    "Customer: What is in a steamer?",
    "Customer: Do you have decaf cold brew, and how much is a refill of it today?",
]


def test_batched_greedy_continuations_equal_one_at_a_time():
    frame = pd.DataFrame(
        {"context": CONTEXTS * 5, "reply": ["Okay, your order will be ready soon"] * 30}
    )
    config = AutocompleteTraining(
        compact=CompactDecoder(
            vocab_size=400, hidden_size=32, intermediate_size=64, num_hidden_layers=2
        )
    )
    model, tokenizer = compact_decoder(frame, config, seed=3)
    with torch.no_grad():  # weights large enough that the logits have clear maxima
        for parameter in model.parameters():
            parameter.mul_(8.0)
    model.eval()
    eos = tokenizer.token_to_id(END_OF_TEXT)
    prompts = [prompt_text(context, start) for context in CONTEXTS for start in ("", "Okay")]

    batched = greedy_continuations(model, tokenizer, prompts, WORD_TOKENS, eos, batch_size=5)
    single = [greedy_continuation(model, tokenizer, p, WORD_TOKENS, eos) for p in prompts]

    assert batched == single
    assert len(set(batched)) > 1  # the prompts lead to different continuations
