"""The quality gate: the fine-tuned challenger against its champion, on the same examples.

The champion is the version live for the customer, scored on its evidence examples when it was
promoted; on a first onboarding (or when the live version kept no evidence) it is the kind's
baseline on the run's held-out examples. The challenger is rejected only when a paired test
finds it worse by more than chance, or when it misses a minimum; a tie goes to the challenger
when it was trained on newer data than the champion, else to the champion. When the challenger
loses and nothing is live, the baseline is served if it is a complete model that reaches the
minimums, so a customer is never left without a model that would have done.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from mme_factory.errors import MmeFactoryError
from mme_factory.model_kinds import ModelKind, describe
from mme_factory.records import (
    ComparisonRecord,
    GateDecision,
    GateEvidence,
    GateRecord,
    MinimumCheckRecord,
    TrainingFingerprint,
)
from mme_factory.settings.training import TrainingSettings
from tasks.training.paired_test import PAIRED_TESTS, PairedComparison, PairedTest


class QualityGateRejected(MmeFactoryError):
    """No candidate of a kind reaches the gate and nothing of it is live: it is not served."""


@dataclass(frozen=True)
class Champion:
    """The kind's live version: what it was trained from and how it scored when promoted."""

    version: int
    fingerprint: TrainingFingerprint | None  # what it was trained from, when known
    evidence: GateEvidence | None

    @property
    def name(self) -> str:
        return f"v{self.version}"


@dataclass(frozen=True)
class Contest:
    """The scores the gate compares: the champion's and the challenger's, example by example."""

    champion_name: str
    champion_scores: Sequence[float]
    challenger_scores: Sequence[float]


def outcome_of(comparison: PairedComparison, significance: float) -> str:
    if comparison.p_worse < significance:
        return "worse"
    if comparison.p_better < significance:
        return "better"
    return "tie"


def compare(
    contest: Contest, metric: str, test: PairedTest, settings: TrainingSettings
) -> ComparisonRecord:
    significance = settings.gate_significance
    comparison = PAIRED_TESTS[test](
        contest.champion_scores,
        contest.challenger_scores,
        significance,
        settings.gate_bootstrap_samples,
    )
    return ComparisonRecord(
        metric=metric,
        test=str(test),
        champion=contest.champion_name,
        examples=comparison.examples,
        champion_value=comparison.champion_mean,
        challenger_value=comparison.challenger_mean,
        difference=comparison.difference,
        ci_low=comparison.ci_low,
        ci_high=comparison.ci_high,
        confidence=1 - significance,
        p_worse=comparison.p_worse,
        p_better=comparison.p_better,
        outcome=outcome_of(comparison, significance),
    )


def minimum_checks(
    kind: ModelKind, model: str, metrics: Mapping[str, object], settings: TrainingSettings
) -> list[MinimumCheckRecord]:
    section = getattr(settings, kind.value)
    checks = []
    for metric, setting in describe(kind).gate.minimums:
        value, minimum = float(str(metrics[metric])), float(getattr(section, setting))
        checks.append(
            MinimumCheckRecord(
                model=model, metric=metric, value=value, minimum=minimum, passed=value >= minimum
            )
        )
    return checks


def _comparison_words(comparison: ComparisonRecord) -> str:
    test = "McNemar" if comparison.test == PairedTest.MCNEMAR else "paired bootstrap"
    p = comparison.p_worse if comparison.outcome != "better" else comparison.p_better
    return (
        f"{comparison.metric} {comparison.challenger_value:.4f} against {comparison.champion} "
        f"{comparison.champion_value:.4f} on {comparison.examples} examples: difference "
        f"{comparison.difference:+.4f} ({comparison.confidence:.0%} CI {comparison.ci_low:+.4f} "
        f"to {comparison.ci_high:+.4f}, {test} p = {p:.3g})"
    )


def _missed(checks: list[MinimumCheckRecord]) -> str:
    return ", ".join(f"{c.metric} {c.value:.4f} < minimum {c.minimum:.4f}" for c in checks)


def judge(
    kind: ModelKind,
    metrics: Mapping[str, Mapping[str, object]],
    contest: Contest,
    settings: TrainingSettings,
    champion: Champion | None,
    newer: bool,
) -> GateRecord:
    """The gate's decision for one kind; `champion` is the live version, None when none is.

    `newer`: the challenger was trained on something the champion was not (data, training
    settings or serving code); a tie then goes its way.
    """
    description = describe(kind)
    spec = description.gate
    comparison = compare(contest, spec.metric, PairedTest(spec.paired_test), settings)
    minimums = minimum_checks(kind, "fine_tuned", metrics["fine_tuned"], settings)
    missed = [check for check in minimums if not check.passed]
    versus = _comparison_words(comparison)
    version = champion.version if champion is not None else None

    def record(decision: GateDecision, reason: str, checks: list[MinimumCheckRecord]) -> GateRecord:
        return GateRecord(
            decision=decision,
            reason=reason,
            comparison=comparison,
            minimums=checks,
            champion_version=version,
        )

    if missed:
        lost = f"the fine-tuned model misses its minimum ({_missed(missed)}); {versus}"
    elif comparison.outcome == "worse":
        lost = f"the fine-tuned model is worse by more than chance: {versus}"
    elif comparison.outcome == "better":
        return record(GateDecision.CHALLENGER, f"better: {versus}; it is served", minimums)
    elif newer or champion is None:
        return record(
            GateDecision.CHALLENGER,
            f"a tie: {versus}; the fine-tuned model learnt from newer data, settings or code "
            f"than {contest.champion_name}, so it is served",
            minimums,
        )
    else:
        lost = f"a tie with {contest.champion_name}, trained on the same data: {versus}"
    if champion is not None:
        return record(GateDecision.CHAMPION, f"{lost}; {champion.name} stays live", minimums)
    baseline = description.baseline
    if spec.baseline_servable:
        fallback = minimum_checks(kind, baseline, metrics[baseline], settings)
        if all(check.passed for check in fallback):
            return record(
                GateDecision.BASELINE,
                f"{lost}; the {baseline} model reaches the minimums and is served instead",
                minimums + fallback,
            )
        minimums = minimums + fallback
        unservable = f"the {baseline} model misses its minimum ({_missed(fallback)})"
    else:
        unservable = f"a {baseline} model cannot be served"
    if not missed:
        return record(
            GateDecision.CHALLENGER,
            f"{lost}; {unservable}, and the fine-tuned model reaches its minimums, so it is served",
            minimums,
        )
    return record(
        GateDecision.REJECTED, f"{lost}; {unservable}: nothing is served for {kind}", minimums
    )


def summary(kind: ModelKind | str, gate: GateRecord) -> str:
    return f"{kind} gate: {gate.decision}: {gate.reason}"
