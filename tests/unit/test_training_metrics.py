"""Metrics and the unigram baseline on hand-checked numbers."""

from __future__ import annotations

import math

import pytest
import torch

from tasks.training.autocomplete.evaluate import next_word_examples, unigram_baseline, unigram_hits
from tasks.training.metrics import classification_metrics, retrieval_metrics


def test_retrieval_metrics_rank_relevant_items():
    queries = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    corpus = torch.tensor([[0.9, 0.1], [0.1, 0.9], [0.8, 0.2]])
    relevant = torch.tensor([[False, False, True], [False, True, False]])
    metrics = retrieval_metrics(queries, corpus, relevant)
    assert metrics["recall_at_1"] == 0.5
    assert metrics["recall_at_5"] == 1.0
    assert metrics["mrr"] == pytest.approx((1 / 2 + 1) / 2)


def test_retrieval_can_exclude_the_query_itself():
    vectors = torch.eye(3)
    relevant = torch.ones(3, 3, dtype=torch.bool)
    metrics = retrieval_metrics(vectors, vectors, relevant, exclude=torch.eye(3, dtype=torch.bool))
    assert metrics["recall_at_1"] == 1.0  # the best other item, not itself


def test_classification_metrics():
    metrics = classification_metrics(["a", "a", "b", "b"], ["a", "b", "b", "b"], ["a", "b"])
    assert metrics["accuracy"] == 0.75
    assert metrics["per_intent"]["a"]["recall"] == 0.5
    assert metrics["macro_f1"] == pytest.approx((2 / 3 + 0.8) / 2)


def test_unigram_baseline():
    baseline = unigram_baseline(
        ["the cat", "the dog"], [("", "", "the"), ("", "the", "cat")], ["the cat"]
    )
    assert baseline["next_word_accuracy"] == 0.5
    # counts the=2, cat=1, dog=1; add-one smoothing over 3 words + unknown: p(the)=3/8, p(cat)=2/8
    assert baseline["perplexity_per_word"] == pytest.approx(
        math.exp(-(math.log(3 / 8) + math.log(2 / 8)) / 2)
    )


def test_unigram_hits_score_each_position():
    assert unigram_hits(["the cat", "the dog"], [("", "", "the"), ("", "the", "cat")]) == [1.0, 0.0]


def test_next_word_examples_name_their_reply_row():
    examples = next_word_examples(["c1", "c2"], ["a b", "x"], count=10, seed=1)
    assert [(e["context"], e["start"], e["truth"]) for e in examples] == [
        ("c1", "", "a"),
        ("c1", "a", "b"),
        ("c2", "", "x"),
    ]
    assert examples[0]["row"] == examples[1]["row"] != examples[2]["row"]
