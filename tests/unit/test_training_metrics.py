"""Metrics, the quality gate and the unigram baseline on hand-checked numbers."""

from __future__ import annotations

import math

import pytest
import torch

from mme_factory.model_kinds import ModelKind
from mme_factory.settings.training import TrainingSettings
from tasks.training.autocomplete.evaluate import unigram_baseline
from tasks.training.metrics import classification_metrics, retrieval_metrics
from tasks.training.quality_gate import QualityGateRejected, enforce, judge


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


def test_gate_rejects_a_classifier_that_does_not_beat_its_base():
    metrics = {"base": {"accuracy": 0.91}, "fine_tuned": {"accuracy": 0.90}}
    verdict = judge(ModelKind.CLASSIFIER, metrics, TrainingSettings())
    assert not verdict.passed
    with pytest.raises(QualityGateRejected, match=r"accuracy 0\.9000 > base 0\.9100: FAILED"):
        enforce(verdict)


def test_gate_accepts_a_better_autocomplete_and_rejects_one_under_unigram():
    good = {
        "unigram": {"perplexity_per_word": 200.0, "next_word_accuracy": 0.08},
        "fine_tuned": {"perplexity_per_word": 3.0, "next_word_accuracy": 0.6},
    }
    assert judge(ModelKind.AUTOCOMPLETE, good, TrainingSettings()).passed
    bad = {
        "unigram": good["unigram"],
        "fine_tuned": {"perplexity_per_word": 250.0, "next_word_accuracy": 0.05},
    }
    verdict = judge(ModelKind.AUTOCOMPLETE, bad, TrainingSettings())
    assert [c.passed for c in verdict.checks] == [False, False, False]


def test_gate_allows_a_tie_only_at_perfection():
    perfect = {"base": {"accuracy": 1.0}, "fine_tuned": {"accuracy": 1.0}}
    assert judge(ModelKind.CLASSIFIER, perfect, TrainingSettings()).passed
    tie = {"base": {"accuracy": 0.9}, "fine_tuned": {"accuracy": 0.9}}
    assert not judge(ModelKind.CLASSIFIER, tie, TrainingSettings()).passed
