"""Batch orders for training: random, or random with texts of similar length batched together.

Batches are padded to their longest text, so random batches of short and long texts spend
most of their compute on padding. Sorting by length inside blocks of `BLOCK_BATCHES` batches,
then shuffling the batches, keeps the order random while cutting that padding. Contrastive
training keeps plain random batches: its in-batch negatives should be any texts, not texts of
one length (sorting query-article pairs by length fills a batch with pairs of one article).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

BLOCK_BATCHES = 50


def length_bucketed_batches(
    lengths: Sequence[int], batch_size: int, rng: np.random.Generator
) -> list[np.ndarray]:
    """One epoch of batches (arrays of indices into `lengths`), each of similar lengths."""
    sizes = np.asarray(lengths)
    order = rng.permutation(len(sizes))
    batches: list[np.ndarray] = []
    block = batch_size * BLOCK_BATCHES
    for start in range(0, len(order), block):
        chunk = order[start : start + block]
        chunk = chunk[np.argsort(sizes[chunk], kind="stable")]
        batches.extend(chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size))
    return [batches[i] for i in rng.permutation(len(batches))]


def random_batches(count: int, batch_size: int, rng: np.random.Generator) -> list[np.ndarray]:
    order = rng.permutation(count)
    return [order[start : start + batch_size] for start in range(0, count, batch_size)]
