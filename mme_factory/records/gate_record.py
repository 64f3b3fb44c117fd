"""The quality gate's verdict on a trained model, as its metadata.json and run.json keep it.

The challenger (the model this run fine-tuned) is compared on the same examples with the
champion: the version live for the customer when there is one, else the base model (or, for
autocomplete, a unigram model). `decision` says what is served after the run:

challenger  the fine-tuned model: not worse than the champion by more than chance, and a tie
            went its way (it was trained on newer data)
baseline    the fine-tuned model lost on a first onboarding; the baseline model, a complete
            model that reaches the minimums, is served instead
champion    the live version stays: the challenger lost, or tied on the same data
rejected    nothing reaches the minimums and nothing is live: the kind is not served
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field

from mme_factory.records.json_record import JsonRecord


class GateDecision(StrEnum):
    CHALLENGER = "challenger"
    BASELINE = "baseline"
    CHAMPION = "champion"
    REJECTED = "rejected"

    @property
    def exports(self) -> bool:
        """This run exports a model for the kind (the challenger or the baseline model)."""
        return self in (GateDecision.CHALLENGER, GateDecision.BASELINE)


class MinimumCheckRecord(JsonRecord):
    model: str  # "fine_tuned" or the baseline's name
    metric: str
    value: float
    minimum: float
    passed: bool


class ComparisonRecord(JsonRecord):
    """Challenger minus champion on the same examples."""

    metric: str
    test: str  # "mcnemar" or "paired_bootstrap"
    champion: str  # "base", "unigram" or the live version, e.g. "v3"
    examples: int
    champion_value: float
    challenger_value: float
    difference: float
    ci_low: float
    ci_high: float
    confidence: float  # of the interval, e.g. 0.95
    p_worse: float
    p_better: float
    outcome: str  # "worse", "better" or "tie" at the gate's significance


class GateRecord(JsonRecord):
    decision: GateDecision
    reason: str  # the decision in words, as the run's table and artifact show it
    comparison: ComparisonRecord | None = None
    minimums: list[MinimumCheckRecord] = Field(default_factory=list)
    champion_version: int | None = None  # the live version compared with, if any

    @property
    def passed(self) -> bool:
        """This run exports a model for the kind."""
        return self.decision.exports
