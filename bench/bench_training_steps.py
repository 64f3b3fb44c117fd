"""Benchmark: where a classifier fine-tune's time goes, per part of a step and per evaluation.

    .venv/bin/python bench/bench_training_steps.py [--steps 30] [--threads 2]

On BANKING77's train.csv with the default classifier settings, times `--steps` training steps
(after two untimed ones) of each variant: tokenizing each batch vs texts tokenized once, the
lowest 0 / 2 / 3 layers frozen, batches of 32 and 64 texts (seconds per step and per text); and
the time `embed` takes over test.csv (3,080 texts) at inference batch sizes 64 and 128. Prints
the table; writes JSON under bench/results/.
"""

from __future__ import annotations

import argparse
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from bench_report import print_table, write_results
from customer_proxy import banking77

from mme_factory.settings import load_settings
from tasks.training.base_models import load_encoder
from tasks.training.batching import length_bucketed_batches
from tasks.training.encoders import (
    IntentClassifier,
    SentenceEncoder,
    embed,
    tokenize,
    trainable_parameters,
)
from tasks.training.reproducibility import seed_everything
from tasks.training.token_batches import TokenizedTexts

REPO = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Variant:
    name: str
    tokenized_once: bool = True
    frozen_layers: int = 0
    batch_size: int = 32


VARIANTS = (
    Variant("tokenize each batch", tokenized_once=False),
    Variant("tokenized once"),
    Variant("tokenized once, 2 layers frozen", frozen_layers=2),
    Variant("tokenized once, 3 layers frozen", frozen_layers=3),
    Variant("tokenized once, batch 64", batch_size=64),
)


def time_steps(variant: Variant, texts: list[str], targets: torch.Tensor, steps: int) -> float:
    """Mean seconds of one training step (forward, loss, backward, clip, AdamW)."""
    transformer, tokenizer = load_encoder(None)
    classifier = IntentClassifier(SentenceEncoder(transformer), int(targets.max()) + 1).train()
    params = trainable_parameters(classifier.encoder, False, variant.frozen_layers)
    optimizer = torch.optim.AdamW([*params, *classifier.head.parameters()], lr=1e-5)
    config = load_settings(environ={}).training.classifier
    tokens = TokenizedTexts.of(tokenizer, texts, config.max_length)
    rng = np.random.default_rng(0)
    batches = length_bucketed_batches(tokens.lengths(), variant.batch_size, rng)
    started = 0.0
    for number, batch in enumerate(batches[: steps + 2]):
        if number == 2:
            started = time.perf_counter()
        if variant.tokenized_once:
            inputs = tokens.batch(batch)
        else:
            inputs = tokenize(tokenizer, [texts[i] for i in batch], config.max_length)
        loss = torch.nn.functional.cross_entropy(classifier(**inputs), targets[batch])
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(classifier.parameters(), 1.0)
        optimizer.step()
    return (time.perf_counter() - started) / steps


def time_embed(texts: list[str], batch_size: int) -> float:
    transformer, tokenizer = load_encoder(None)
    encoder = SentenceEncoder(transformer).eval()
    started = time.perf_counter()
    embed(encoder, tokenizer, texts, 64, batch_size=batch_size)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    seed_everything(13, args.threads)
    train, test = banking77()
    labels = {label: i for i, label in enumerate(sorted(train["intent"].unique()))}
    targets = torch.tensor([labels[label] for label in train["intent"]])
    texts = list(train["text"])
    results: dict[str, Any] = {"load_average_at_start": os.getloadavg(), "steps": args.steps}
    rows = []
    for variant in VARIANTS:
        per_step = time_steps(variant, texts, targets, args.steps)
        per_text = per_step * 1e3 / variant.batch_size
        results[variant.name] = {"s_per_step": per_step, "ms_per_text": per_text}
        rows.append((variant.name, f"{per_step:.3f} s/step, {per_text:.2f} ms/text"))
    for batch_size in (64, 128):
        seconds = time_embed(list(test["text"]), batch_size)
        results[f"embed test.csv, batch {batch_size}"] = {"s": seconds}
        rows.append((f"embed {len(test):,} test texts, batch {batch_size}", f"{seconds:.1f} s"))
    print_table(rows)
    print(f"wrote {write_results('training_steps', results, args.out)}")


if __name__ == "__main__":
    main()
