"""The quality gate: a model that does not beat its baseline, or misses a minimum, is rejected."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from mme_factory.errors import MmeFactoryError
from mme_factory.model_kinds import ModelKind, describe
from mme_factory.records import GateCheckRecord, GateRecord
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

    def to_record(self) -> GateRecord:
        return GateRecord(
            passed=self.passed,
            checks=[
                GateCheckRecord(
                    metric=c.metric,
                    value=c.value,
                    threshold=c.threshold,
                    against=c.against,
                    passed=c.passed,
                )
                for c in self.checks
            ],
        )


def checks_for(
    kind: ModelKind, metrics: Mapping[str, Mapping[str, object]], settings: TrainingSettings
) -> list[Check]:
    """The kind's gate rules applied to its metrics: beat the baseline, reach the minimums."""
    description = describe(kind)
    baseline, tuned = metrics[description.baseline], metrics["fine_tuned"]
    section = getattr(settings, kind.value)
    checks = []
    for rule in description.gate:
        value = tuned[rule.metric]
        if rule.minimum_setting is None:
            threshold, against = baseline[rule.metric], description.baseline
        else:
            threshold, against = getattr(section, rule.minimum_setting), "minimum"
        checks.append(Check(rule.metric, value, threshold, rule.higher_is_better, against))
    return checks


def judge(
    kind: ModelKind, metrics: Mapping[str, Mapping[str, object]], settings: TrainingSettings
) -> GateVerdict:
    return GateVerdict(kind, tuple(checks_for(kind, metrics, settings)))


def enforce(verdict: GateVerdict) -> GateVerdict:
    if not verdict.passed:
        raise QualityGateRejected(verdict.summary())
    return verdict
