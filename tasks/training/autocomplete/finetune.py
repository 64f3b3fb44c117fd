"""Fine-tune a causal LM to complete agent replies.

Two bases work offline: "compact", a small Llama-architecture decoder initialised from settings
with a byte-level BPE tokenizer trained on the customer's conversations (the default: fast to
train and to serve), and "smollm2", the pretrained SmolLM2-135M-Instruct GGUF. Any other local
causal LM (a directory, an offline-cached id or a .gguf file) also works.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from tokenizers import Tokenizer

from mme_factory.records import StepsSummary
from mme_factory.settings.training import AutocompleteTraining
from tasks.data.training_data import CustomerDataset, TrainingDataError, split_rows
from tasks.training.autocomplete.evaluate import (
    as_positions,
    completion_latency_ms,
    evaluation_seconds,
    next_word_examples,
    next_word_hits,
    perplexity,
    unigram_baseline,
    unigram_hits,
)
from tasks.training.autocomplete.examples import (
    END_OF_TEXT,
    collate,
    encode_example,
    train_tokenizer,
)
from tasks.training.base_models import load_causal_lm
from tasks.training.batching import length_bucketed_batches
from tasks.training.budgeted_optimizer import BudgetedOptimizer
from tasks.training.held_out import HeldOutScores
from tasks.training.step_budget import StepBudget, budgeted_batches
from tasks.training.trained_model import phase_timings

COMPACT = "compact"
LATENCY_PROMPTS = 5
# The final evaluation's time is estimated from a sample of its work, with room to spare.
EVALUATION_MARGIN = 1.5


@dataclass
class AutocompleteModel:
    model: Any  # a transformers LlamaForCausalLM
    tokenizer: Tokenizer
    eos_id: int
    base_model: str
    config: AutocompleteTraining
    metrics: dict[str, dict[str, float]]
    held_out: pd.DataFrame
    timings: dict[str, float] = field(default_factory=dict)
    final_loss: float | None = None
    steps: StepsSummary | None = None
    held_out_scores: HeldOutScores | None = None


def score_examples(model: AutocompleteModel, examples: list[dict[str, str]]) -> list[float]:
    """1.0 for each example whose next word the model predicts first, else 0.0."""
    return next_word_hits(model.model, model.tokenizer, as_positions(examples), model.eos_id)


def planned_steps(examples: int, config: AutocompleteTraining) -> int:
    total = config.epochs * math.ceil(examples / config.batch_size)
    return min(total, config.max_steps) if config.max_steps else total


def compact_decoder(
    train: pd.DataFrame, config: AutocompleteTraining, seed: int
) -> tuple[Any, Tokenizer]:
    from transformers import LlamaConfig, LlamaForCausalLM

    texts = [f"{c}\n{r}" for c, r in zip(train["context"], train["reply"], strict=True)]
    tokenizer = train_tokenizer(texts, config.compact.vocab_size)
    eos = tokenizer.token_to_id(END_OF_TEXT)
    shape = config.compact
    llama = LlamaConfig(
        vocab_size=tokenizer.get_vocab_size(),
        hidden_size=shape.hidden_size,
        intermediate_size=shape.intermediate_size,
        num_hidden_layers=shape.num_hidden_layers,
        num_attention_heads=shape.num_attention_heads,
        num_key_value_heads=shape.num_key_value_heads,
        max_position_embeddings=config.max_length,
        tie_word_embeddings=True,
        bos_token_id=eos,
        eos_token_id=eos,
        pad_token_id=eos,
        rms_norm_eps=1e-5,
    )
    torch.manual_seed(seed)
    return LlamaForCausalLM(llama), tokenizer


def load_base(
    train: pd.DataFrame, config: AutocompleteTraining, seed: int, cache_dir: Path
) -> tuple[Any, Tokenizer, int]:
    if config.base_model == COMPACT:
        model, tokenizer = compact_decoder(train, config, seed)
        return model, tokenizer, tokenizer.token_to_id(END_OF_TEXT)
    model, hf_tokenizer = load_causal_lm(config.base_model, cache_dir)
    eos = hf_tokenizer.eos_token_id
    if eos is None:
        raise TrainingDataError(f"base model {config.base_model} has no end-of-text token")
    return model, hf_tokenizer.backend_tokenizer, int(eos)


def train_decoder(
    model: Any,
    examples: list,
    eos_id: int,
    config: AutocompleteTraining,
    learning_rate: float,
    seed: int,
    budget: StepBudget,
) -> float | None:
    optimizer = torch.optim.AdamW(model.parameters(), lr=learning_rate, weight_decay=0.01)
    steps = BudgetedOptimizer("autocomplete", optimizer, budget)
    rng = np.random.default_rng(seed)
    lengths = [len(example.input_ids) for example in examples]
    model.train()
    epoch = partial(length_bucketed_batches, lengths, config.batch_size, rng)
    for indices in budgeted_batches(budget, epoch):
        batch = collate([examples[i] for i in indices], eos_id)
        loss = model(**batch).loss
        steps.step(loss, model.parameters())
    model.eval()
    return steps.final_loss


def evaluate(
    model: Any,
    tokenizer: Tokenizer,
    eos_id: int,
    held: pd.DataFrame,
    positions: list,
    config: AutocompleteTraining,
) -> tuple[dict[str, float], list[float]]:
    """Held-out metrics, and whether each position's next word was predicted."""
    contexts, replies = list(held["context"]), list(held["reply"])
    metrics = perplexity(model, tokenizer, contexts, replies, eos_id, config.max_length)
    hits = next_word_hits(model, tokenizer, positions, eos_id)
    metrics["next_word_accuracy"] = sum(hits) / max(1, len(hits))
    metrics["completion_ms"] = completion_latency_ms(
        model, tokenizer, contexts[:LATENCY_PROMPTS], config.completion_tokens, eos_id
    )
    return metrics, hits


def finetune_autocomplete(
    data: CustomerDataset,
    config: AutocompleteTraining,
    fraction: float,
    seed: int,
    cache_dir: Path,
    held_out: pd.DataFrame | None = None,
) -> AutocompleteModel:
    """Train on replies.jsonl; word-level perplexity and next-word accuracy vs a unigram model."""
    started = time.monotonic()
    if data.replies is None or len(data.replies) < 2:
        raise TrainingDataError("autocomplete needs replies.jsonl with at least 2 replies")
    if held_out is None:
        train, held = split_rows(data.replies, fraction, seed)
    else:  # an evaluation set kept apart by the caller (e.g. a benchmark's test split)
        train, held = data.replies, held_out
    model, tokenizer, eos_id = load_base(train, config, seed, cache_dir)
    examples = [
        encode_example(tokenizer, c, r, eos_id, config.max_length)
        for c, r in zip(train["context"], train["reply"], strict=True)
    ]
    examples_held = next_word_examples(
        list(held["context"]), list(held["reply"]), config.eval_next_words, seed
    )
    positions = as_positions(examples_held)
    metrics = {"unigram": unigram_baseline(list(train["reply"]), positions, list(held["reply"]))}
    reserve_s = EVALUATION_MARGIN * evaluation_seconds(
        model, tokenizer, held, positions, eos_id, config, LATENCY_PROMPTS
    )
    budget = StepBudget.from_minutes(
        planned_steps(len(examples), config), config.time_budget_minutes, started, reserve_s
    )
    trained_at = time.monotonic()
    rate = config.learning_rate if config.base_model == COMPACT else config.pretrained_learning_rate
    torch.manual_seed(seed)
    final_loss = train_decoder(model, examples, eos_id, config, rate, seed, budget)
    evaluated_at = time.monotonic()
    metrics["fine_tuned"], hits = evaluate(model, tokenizer, eos_id, held, positions, config)
    scores = {"unigram": unigram_hits(list(train["reply"]), positions), "fine_tuned": hits}
    return AutocompleteModel(
        model,
        tokenizer,
        eos_id,
        config.base_model,
        config,
        metrics,
        held,
        phase_timings(started, trained_at, evaluated_at),
        final_loss,
        budget.summary(),
        HeldOutScores("next_word_accuracy", examples_held, scores),
    )
