"""Benchmark: where an intents-only customer's embedding fine-tune spends its time.

    .venv/bin/python bench/bench_embedding_steps.py [--texts 3600] [--steps 8]

Builds an intents-only customer from a seeded sample of BANKING77's train.csv (default 3,600
texts; no articles, so the encoders learn same-intent pairs), then, with the default embedding
settings, counts the pairs and planned steps, times the baseline evaluation, and times each part
of a training step (tokenize, the two towers' forward, loss, backward, clipping, optimizer) over
`--steps` steps, once with the token-embedding table trained (the recipe before it was frozen)
and once frozen (today's default). Prints the per-step table and the whole fine-tune each recipe
implies at that step time (planned steps x mean step, plus two evaluations); writes JSON under
bench/results/.
"""

from __future__ import annotations

import argparse
import os
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from bench_report import machine_and_versions, print_table, write_results

from mme_factory.settings import load_settings
from tasks.data.training_data import CustomerDataset
from tasks.training.base_models import load_encoder
from tasks.training.batching import random_batches
from tasks.training.embedding import contrastive_loss, evaluate, planned_steps, retrieval_task
from tasks.training.encoders import SentenceEncoder, tokenize, trainable_parameters

REPO = Path(__file__).resolve().parent.parent
BANKING77_TRAIN = REPO.parent / "shared" / "datasets" / "banking77" / "train.csv"
PARTS = ("tokenize", "forward", "loss", "backward", "clip", "optimizer")


def intents_only_customer(texts: int, seed: int) -> CustomerDataset:
    frame = pd.read_csv(BANKING77_TRAIN, dtype=str, keep_default_na=False)
    frame = frame.rename(columns={"category": "intent"})[["text", "intent"]]
    frame = frame.sample(n=min(texts, len(frame)), random_state=seed).reset_index(drop=True)
    return CustomerDataset("intents-only", "-", intents=frame)


def timed_steps(
    base: SentenceEncoder,
    tokenizer: Any,
    pairs: list[tuple[str, str, str]],
    config: Any,
    train_table: bool,
    steps: int,
    seed: int,
) -> dict[str, Any]:
    """Seconds per part of each of `steps` steps after one warm-up step, and padded tokens."""
    torch.manual_seed(seed)
    query_encoder, article_encoder = base.copy().train(), base.copy().train()
    params = trainable_parameters(query_encoder, train_table)
    params += trainable_parameters(article_encoder, train_table)
    optimizer = torch.optim.AdamW(params, lr=config.learning_rate)
    batches = random_batches(len(pairs), config.batch_size, np.random.default_rng(seed))
    parts: dict[str, list[float]] = defaultdict(list)
    padded = real = 0
    for number, indices in enumerate(batches):
        if number > steps:
            break
        batch = [pairs[i] for i in indices]
        times: dict[str, float] = {}
        at = time.perf_counter()
        queries_in = tokenize(tokenizer, [b[0] for b in batch], config.query_max_length)
        positives_in = tokenize(tokenizer, [b[1] for b in batch], config.article_max_length)
        times["tokenize"] = time.perf_counter() - at
        at = time.perf_counter()
        queries, positives = query_encoder(**queries_in), article_encoder(**positives_in)
        times["forward"] = time.perf_counter() - at
        at = time.perf_counter()
        loss = contrastive_loss(queries, positives, [b[2] for b in batch], config.temperature)
        times["loss"] = time.perf_counter() - at
        at = time.perf_counter()
        optimizer.zero_grad()
        loss.backward()
        times["backward"] = time.perf_counter() - at
        at = time.perf_counter()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        times["clip"] = time.perf_counter() - at
        at = time.perf_counter()
        optimizer.step()
        times["optimizer"] = time.perf_counter() - at
        if number == 0:
            continue
        for part, seconds in times.items():
            parts[part].append(seconds)
        for inputs in (queries_in, positives_in):
            padded += inputs["attention_mask"].numel()
            real += int(inputs["attention_mask"].sum())
    mean = {part: float(np.mean(parts[part])) for part in PARTS}
    return {
        "train_token_embeddings": train_table,
        "trainable_parameters": sum(p.numel() for p in params),
        "steps_timed": len(parts["forward"]),
        "seconds_per_step": mean,
        "step_s": sum(mean.values()),
        "padding_fraction": 1 - real / padded,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=3600)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results")
    args = parser.parse_args()
    if args.texts < 10 or args.steps < 1:
        parser.error("--texts needs at least 10 (a held-out split per intent) and --steps 1")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    settings = load_settings(environ={})
    config, seed = settings.training.embedding, settings.training.seed
    data = intents_only_customer(args.texts, seed)
    task_ = retrieval_task(data, config, settings.training.held_out_fraction, seed)
    steps = planned_steps(len(task_.train), config)
    transformer, tokenizer = load_encoder(config.base_model)
    base = SentenceEncoder(transformer).eval()
    at = time.perf_counter()
    evaluate(base, base, tokenizer, task_, config)
    evaluation_s = time.perf_counter() - at
    recipes = [
        timed_steps(base, tokenizer, task_.train, config, train_table, args.steps, seed)
        for train_table in (True, False)
    ]
    for recipe in recipes:
        recipe["implied_fine_tune_s"] = steps * recipe["step_s"] + 2 * evaluation_s
    results = {
        "benchmark": "embedding_steps",
        **machine_and_versions(),
        "texts": len(data.intents),
        "training_pairs": len(task_.train),
        "held_out_queries": len(task_.queries),
        "corpus_texts": len(task_.corpus),
        "planned_steps": steps,
        "epochs": config.epochs,
        "batch_size": config.batch_size,
        "same_intent_pairs_per_text": config.same_intent_pairs_per_text,
        "evaluation_s": evaluation_s,
        "time_budget_minutes": config.time_budget_minutes,
        "recipes": recipes,
    }
    print(
        f"intents-only customer: {results['texts']:,} texts -> {len(task_.train):,} same-intent "
        f"pairs ({config.same_intent_pairs_per_text} per text) x {config.epochs} epochs / batch "
        f"{config.batch_size} = {steps} steps of two towers; one evaluation (held-out "
        f"{len(task_.queries):,} queries against {len(task_.corpus):,} texts) {evaluation_s:.1f} s"
    )
    print(f"\n{'part of a step (s)':<20}" + "".join(f"{p:>11}" for p in PARTS) + f"{'step':>9}")
    for recipe in recipes:
        label = "table trained" if recipe["train_token_embeddings"] else "table frozen"
        per = recipe["seconds_per_step"]
        print(
            f"{label:<20}"
            + "".join(f"{per[p]:>11.3f}" for p in PARTS)
            + f"{recipe['step_s']:>9.3f}"
        )
    print()
    print_table(
        [
            (
                f"{'table trained' if r['train_token_embeddings'] else 'table frozen'}",
                f"{r['trainable_parameters'] / 1e6:.1f} M trainable, padding "
                f"{r['padding_fraction']:.0%} of tokens, {steps} steps x {r['step_s']:.2f} s + "
                f"2 evaluations = {r['implied_fine_tune_s']:.0f} s without a budget",
            )
            for r in recipes
        ]
    )
    print(f"time budget (training.embedding.time_budget_minutes): {config.time_budget_minutes}")
    print(f"\nwrote {write_results('embedding-steps', results, args.out)}")


if __name__ == "__main__":
    main()
