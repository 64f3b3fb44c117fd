"""Evaluation metrics as small named functions over plain tensors and lists."""

from __future__ import annotations

from collections.abc import Sequence

import torch


def retrieval_metrics(
    queries: torch.Tensor,
    corpus: torch.Tensor,
    relevant: torch.Tensor,
    exclude: torch.Tensor | None = None,
) -> dict[str, float]:
    """recall@1, recall@5 and MRR; `relevant[i, j]` is True when corpus item j answers query i.

    `exclude[i, j]` True removes item j from query i's ranking (e.g. the query itself).
    """
    scores = queries @ corpus.T
    if exclude is not None:
        scores = scores.masked_fill(exclude, float("-inf"))
        relevant = relevant & ~exclude
    ranking = scores.argsort(dim=1, descending=True)
    hits = torch.gather(relevant, 1, ranking)
    first = torch.where(hits.any(dim=1), hits.float().argmax(dim=1) + 1, torch.tensor(0))
    reciprocal = torch.where(first > 0, 1.0 / first.clamp(min=1).float(), torch.tensor(0.0))
    return {
        "recall_at_1": float(hits[:, :1].any(dim=1).float().mean()),
        "recall_at_5": float(hits[:, :5].any(dim=1).float().mean()),
        "mrr": float(reciprocal.mean()),
        "queries": len(queries),
        "corpus": len(corpus),
    }


def classification_metrics(
    truth: Sequence[str], predicted: Sequence[str], labels: Sequence[str]
) -> dict[str, object]:
    """Accuracy, macro-F1 over the labels present in `truth`, and a per-label table."""
    per_label: dict[str, dict[str, float]] = {}
    for label in labels:
        tp = sum(t == label and p == label for t, p in zip(truth, predicted, strict=True))
        fp = sum(t != label and p == label for t, p in zip(truth, predicted, strict=True))
        support = sum(t == label for t in truth)
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / support if support else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_label[label] = {"precision": precision, "recall": recall, "f1": f1, "support": support}
    scored = [row["f1"] for row in per_label.values() if row["support"]]
    correct = sum(t == p for t, p in zip(truth, predicted, strict=True))
    return {
        "accuracy": correct / len(truth) if truth else 0.0,
        "macro_f1": sum(scored) / len(scored) if scored else 0.0,
        "examples": len(truth),
        "per_intent": per_label,
    }
