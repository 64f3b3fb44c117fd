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
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from tokenizers import Tokenizer

from tasks.training.autocomplete.examples import IGNORE, collate, encode_example, prompt_text
from tasks.training.held_out import row_key

WORD_TOKENS = 8
NEXT_WORD_BATCH = 16
PERPLEXITY_BATCH = 16


def unigram_baseline(
    train_replies: Sequence[str], positions: list[tuple[str, str, str]], held_replies: Sequence[str]
) -> dict[str, float]:
    counts = Counter(word for reply in train_replies for word in reply.split())
    total, vocabulary = sum(counts.values()), len(counts) + 1
    words = [word for reply in held_replies for word in reply.split()]
    nll = -sum(math.log((counts[word] + 1) / (total + vocabulary)) for word in words)
    hits = unigram_hits(train_replies, positions)
    return {
        "perplexity_per_word": math.exp(nll / max(1, len(words))),
        "next_word_accuracy": sum(hits) / max(1, len(positions)),
    }


def unigram_hits(
    train_replies: Sequence[str], positions: list[tuple[str, str, str]]
) -> list[float]:
    """1.0 where the most frequent training word is the true next word, else 0.0."""
    counts = Counter(word for reply in train_replies for word in reply.split())
    top = counts.most_common(1)[0][0] if counts else ""
    return [float(truth == top) for _, _, truth in positions]


def next_word_examples(
    contexts: Sequence[str], replies: Sequence[str], count: int, seed: int
) -> list[dict[str, str]]:
    """`count` random word positions of the replies: context, reply start, true next word and
    the reply's row key."""
    candidates = [
        {
            "context": c,
            "start": " ".join(r.split()[:i]),
            "truth": r.split()[i],
            "row": row_key(c, r),
        }
        for c, r in zip(contexts, replies, strict=True)
        for i in range(len(r.split()))
    ]
    rng = np.random.default_rng(seed)
    chosen = rng.choice(len(candidates), size=min(count, len(candidates)), replace=False)
    return [candidates[i] for i in sorted(chosen)]


def as_positions(examples: list[dict[str, str]]) -> list[tuple[str, str, str]]:
    return [(e["context"], e["start"], e["truth"]) for e in examples]


def next_word_positions(
    contexts: Sequence[str], replies: Sequence[str], count: int, seed: int
) -> list[tuple[str, str, str]]:
    """(context, reply start, true next word) at `count` random word positions."""
    return as_positions(next_word_examples(contexts, replies, count, seed))


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
    batch_size: int = PERPLEXITY_BATCH,
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


@torch.inference_mode()
def greedy_continuations(
    model: Any,
    tokenizer: Tokenizer,
    prompts: Sequence[str],
    max_new_tokens: int,
    eos_id: int,
    batch_size: int = NEXT_WORD_BATCH,
    full_length: bool = False,
) -> list[str]:
    """Greedy continuations of many prompts, left-padded in batches of similar lengths;
    `full_length` generates every token even past the end token (for timing)."""
    encoded = [tokenizer.encode(prompt, add_special_tokens=False).ids for prompt in prompts]
    order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]))
    continuations = [""] * len(encoded)
    for start in range(0, len(order), batch_size):
        chunk = order[start : start + batch_size]
        width = max(len(encoded[i]) for i in chunk)
        ids = torch.full((len(chunk), width), eos_id, dtype=torch.long)
        mask = torch.zeros((len(chunk), width), dtype=torch.long)
        for row, index in enumerate(chunk):
            tokens = encoded[index]
            ids[row, width - len(tokens) :] = torch.tensor(tokens)
            mask[row, width - len(tokens) :] = 1
        output = model.generate(
            ids,
            attention_mask=mask,
            do_sample=False,
            max_new_tokens=max_new_tokens,
            min_new_tokens=max_new_tokens if full_length else 0,
            eos_token_id=None if full_length else eos_id,
            pad_token_id=eos_id,
        )
        for row, index in enumerate(chunk):
            new = output[row, width:].tolist()
            if eos_id in new:
                new = new[: new.index(eos_id)]
            continuations[index] = tokenizer.decode(new, skip_special_tokens=True)
    return continuations


def next_word_hits(
    model: Any, tokenizer: Tokenizer, positions: list[tuple[str, str, str]], eos_id: int
) -> list[float]:
    """1.0 where the first word of the greedy continuation is the true next word, else 0.0."""
    prompts = [prompt_text(context, start) for context, start, _ in positions]
    continuations = greedy_continuations(model, tokenizer, prompts, WORD_TOKENS, eos_id)
    hits = []
    for (_, _, truth), continuation in zip(positions, continuations, strict=True):
        predicted = continuation.split()[0] if continuation.split() else ""
        hits.append(float(predicted == truth))
    return hits


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


def warm_seconds(unit: Callable[[], object]) -> float:
    """Seconds of `unit`'s second call: the first pays one-off allocation and kernel set-up,
    which on a small model is most of a call and would make the estimate many times too long."""
    unit()
    started = time.perf_counter()
    unit()
    return time.perf_counter() - started


def evaluation_seconds(
    model: Any,
    tokenizer: Tokenizer,
    held: Any,
    positions: list[tuple[str, str, str]],
    eos_id: int,
    config: Any,
    latency_prompts: int,
    batch_size: int = PERPLEXITY_BATCH,
) -> float:
    """An estimate of the final evaluation's time, from one unit of each of its parts."""
    contexts, replies = list(held["context"]), list(held["reply"])
    sample = [prompt_text(context, start) for context, start, _ in positions[:NEXT_WORD_BATCH]]
    per_batch = warm_seconds(
        lambda: perplexity(
            model, tokenizer, contexts[:batch_size], replies[:batch_size], eos_id, config.max_length
        )
    )
    per_next_word_batch = warm_seconds(
        lambda: greedy_continuations(
            model,
            tokenizer,
            sample or [prompt_text(contexts[0])],
            WORD_TOKENS,
            eos_id,
            full_length=True,
        )
    )
    per_word = warm_seconds(
        lambda: greedy_continuation(
            model, tokenizer, prompt_text(contexts[0]), WORD_TOKENS, eos_id, WORD_TOKENS
        )
    )
    batches = math.ceil(len(contexts) / batch_size)
    next_word_batches = math.ceil(len(positions) / NEXT_WORD_BATCH)
    completions = latency_prompts * config.completion_tokens / WORD_TOKENS
    return batches * per_batch + next_word_batches * per_next_word_batch + completions * per_word
