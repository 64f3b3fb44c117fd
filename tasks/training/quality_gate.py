"""The quality gate: a model that does not beat its baseline, or misses a minimum, is rejected."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from prefect import task

from mme_factory.errors import MmeFactoryError
from mme_factory.model_kinds import ModelKind
from mme_factory.settings.training import TrainingSettings


class QualityGateRejected(MmeFactoryError):
    """A trained model failed the gate; it must not be packaged."""


@dataclass(frozen=True)
class Check:
    metric: str
    value: float
    threshold: float
    higher_is_better: bool
    against: str  # "base", "unigram" or "minimum"

    @property
    def passed(self) -> bool:
        if self.against == "minimum":
            return self.value >= self.threshold
        if self.higher_is_better:
            # A model already perfect on held-out data cannot beat a base that is perfect too.
            return self.value > self.threshold or self.value == self.threshold == 1.0
        return self.value < self.threshold

    def line(self) -> str:
        relation = ">=" if self.against == "minimum" else (">" if self.higher_is_better else "<")
        verdict = "ok" if self.passed else "FAILED"
        return (
            f"{self.metric} {self.value:.4f} {relation} {self.against} "
            f"{self.threshold:.4f}: {verdict}"
        )


@dataclass(frozen=True)
class GateVerdict:
    kind: ModelKind
    checks: tuple[Check, ...]

    @property
    def passed(self) -> bool:
        return all(check.passed for check in self.checks)

    def summary(self) -> str:
        head = "accepted" if self.passed else "REJECTED"
        return f"{self.kind} {head}: " + "; ".join(check.line() for check in self.checks)

    def to_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "checks": [
                {
                    "metric": c.metric,
                    "value": c.value,
                    "threshold": c.threshold,
                    "against": c.against,
                    "passed": c.passed,
                }
                for c in self.checks
            ],
        }


def _embedding(metrics: dict, settings: TrainingSettings) -> list[Check]:
    base, tuned = metrics["base"], metrics["fine_tuned"]
    return [
        Check("recall_at_1", tuned["recall_at_1"], base["recall_at_1"], True, "base"),
        Check("mrr", tuned["mrr"], base["mrr"], True, "base"),
        Check(
            "recall_at_1", tuned["recall_at_1"], settings.embedding.min_recall_at_1, True, "minimum"
        ),
    ]


def _classifier(metrics: dict, settings: TrainingSettings) -> list[Check]:
    base, tuned = metrics["base"], metrics["fine_tuned"]
    return [
        Check("accuracy", tuned["accuracy"], base["accuracy"], True, "base"),
        Check("accuracy", tuned["accuracy"], settings.classifier.min_accuracy, True, "minimum"),
    ]


def _autocomplete(metrics: dict, settings: TrainingSettings) -> list[Check]:
    unigram, tuned = metrics["unigram"], metrics["fine_tuned"]
    return [
        Check(
            "perplexity_per_word",
            tuned["perplexity_per_word"],
            unigram["perplexity_per_word"],
            False,
            "unigram",
        ),
        Check(
            "next_word_accuracy",
            tuned["next_word_accuracy"],
            unigram["next_word_accuracy"],
            True,
            "unigram",
        ),
        Check(
            "next_word_accuracy",
            tuned["next_word_accuracy"],
            settings.autocomplete.min_next_word_accuracy,
            True,
            "minimum",
        ),
    ]


GATES: dict[ModelKind, Callable[[dict, TrainingSettings], list[Check]]] = {
    ModelKind.EMBEDDING: _embedding,
    ModelKind.CLASSIFIER: _classifier,
    ModelKind.AUTOCOMPLETE: _autocomplete,
}


def judge(kind: ModelKind, metrics: dict, settings: TrainingSettings) -> GateVerdict:
    return GateVerdict(kind, tuple(GATES[kind](metrics, settings)))


def enforce(verdict: GateVerdict) -> GateVerdict:
    if not verdict.passed:
        raise QualityGateRejected(verdict.summary())
    return verdict


@task(name="quality-gate")
def quality_gate(kind: ModelKind, metrics: dict, settings: TrainingSettings) -> GateVerdict:
    """Accept the model or raise QualityGateRejected with the numbers."""
    return enforce(judge(kind, metrics, settings))
