"""Autocomplete evaluation in words, so models with different tokenizers compare fairly.

Perplexity per word: exp(reply NLL / words in the reply). Next-word accuracy: at sampled word
positions of held-out replies, the first word of a greedy continuation equals the true word.
The unigram baseline predicts the most frequent training word and scores words by frequency.
"""

from __future__ import annotations

import math
import statistics
import time
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from tokenizers import Tokenizer

from tasks.training.autocomplete.examples import IGNORE, collate, encode_example, prompt_text

WORD_TOKENS = 8


def unigram_baseline(
    train_replies: Sequence[str], positions: list[tuple[str, str, str]], held_replies: Sequence[str]
) -> dict[str, float]:
    counts = Counter(word for reply in train_replies for word in reply.split())
    total, vocabulary = sum(counts.values()), len(counts) + 1
    words = [word for reply in held_replies for word in reply.split()]
    nll = -sum(math.log((counts[word] + 1) / (total + vocabulary)) for word in words)
    top = counts.most_common(1)[0][0] if counts else ""
    correct = sum(truth == top for _, _, truth in positions)
    return {
        "perplexity_per_word": math.exp(nll / max(1, len(words))),
        "next_word_accuracy": correct / max(1, len(positions)),
    }


def next_word_positions(
    contexts: Sequence[str], replies: Sequence[str], count: int, seed: int
) -> list[tuple[str, str, str]]:
    """(context, reply start, true next word) at `count` random word positions."""
    candidates = [
        (c, " ".join(r.split()[:i]), r.split()[i])
        for c, r in zip(contexts, replies, strict=True)
        for i in range(len(r.split()))
    ]
    rng = np.random.default_rng(seed)
    chosen = rng.choice(len(candidates), size=min(count, len(candidates)), replace=False)
    return [candidates[i] for i in sorted(chosen)]


@torch.inference_mode()
def greedy_continuation(
    model: Any,
    tokenizer: Tokenizer,
    prompt: str,
    max_new_tokens: int,
    eos_id: int,
    min_new_tokens: int = 0,
) -> str:
    ids = torch.tensor([tokenizer.encode(prompt, add_special_tokens=False).ids])
    output = model.generate(
        ids,
        attention_mask=torch.ones_like(ids),
        do_sample=False,
        max_new_tokens=max_new_tokens,
        min_new_tokens=min_new_tokens,
        eos_token_id=None if min_new_tokens else eos_id,
        pad_token_id=eos_id,
    )
    return tokenizer.decode(output[0, ids.shape[1] :].tolist(), skip_special_tokens=True)


@torch.inference_mode()
def perplexity(
    model: Any,
    tokenizer: Tokenizer,
    contexts: Sequence[str],
    replies: Sequence[str],
    eos_id: int,
    max_length: int,
    batch_size: int = 16,
) -> dict[str, float]:
    nll, tokens, words = 0.0, 0, 0
    examples = [
        encode_example(tokenizer, c, r, eos_id, max_length)
        for c, r in zip(contexts, replies, strict=True)
    ]
    for start in range(0, len(examples), batch_size):
        batch = collate(examples[start : start + batch_size], eos_id)
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        targets = batch["labels"][:, 1:].clone()
        targets[batch["input_ids"][:, 1:] == eos_id] = IGNORE  # the end token is not a word
        losses = torch.nn.functional.cross_entropy(
            logits[:, :-1].transpose(1, 2).float(), targets, ignore_index=IGNORE, reduction="sum"
        )
        nll += float(losses)
        tokens += int((targets != IGNORE).sum())
    words = sum(len(reply.split()) for reply in replies)
    return {
        "perplexity_per_word": math.exp(nll / max(1, words)),
        "perplexity_per_token": math.exp(nll / max(1, tokens)),
    }


def next_word_accuracy(
    model: Any, tokenizer: Tokenizer, positions: list[tuple[str, str, str]], eos_id: int
) -> float:
    correct = 0
    for context, start, truth in positions:
        continuation = greedy_continuation(
            model, tokenizer, prompt_text(context, start), WORD_TOKENS, eos_id
        )
        predicted = continuation.split()[0] if continuation.split() else ""
        correct += predicted == truth
    return correct / max(1, len(positions))


def completion_latency_ms(
    model: Any, tokenizer: Tokenizer, contexts: Sequence[str], new_tokens: int, eos_id: int
) -> float:
    """Median wall time of a greedy completion of exactly `new_tokens` tokens."""
    timings = []
    for context in contexts:
        started = time.perf_counter()
        greedy_continuation(
            model, tokenizer, prompt_text(context), new_tokens, eos_id, min_new_tokens=new_tokens
        )
        timings.append((time.perf_counter() - started) * 1000)
    return statistics.median(timings)


def evaluation_seconds(
    model: Any,
    tokenizer: Tokenizer,
    held: Any,
    positions: list[tuple[str, str, str]],
    eos_id: int,
    config: Any,
    latency_prompts: int,
    batch_size: int = 16,
) -> float:
    """An estimate of the final evaluation's time, from one unit of each of its parts."""
    contexts, replies = list(held["context"]), list(held["reply"])
    started = time.perf_counter()
    perplexity(
        model, tokenizer, contexts[:batch_size], replies[:batch_size], eos_id, config.max_length
    )
    per_batch = time.perf_counter() - started
    context, start, _ = positions[0] if positions else (contexts[0], "", "")
    started = time.perf_counter()
    greedy_continuation(
        model, tokenizer, prompt_text(context, start), WORD_TOKENS, eos_id, WORD_TOKENS
    )
    per_word = time.perf_counter() - started
    batches = math.ceil(len(contexts) / batch_size)
    completions = latency_prompts * config.completion_tokens / WORD_TOKENS
    return batches * per_batch + (len(positions) + completions) * per_word
