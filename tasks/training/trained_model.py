"""What every kind's fine-tuning returns, as far as the steps after it read it."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Protocol

from mme_factory.records import StepsSummary
from tasks.training.held_out import HeldOutScores


class TrainedModel(Protocol):
    """A fine-tuned model with its evaluation: the gate judges its held-out scores and
    `metrics`, the run records the rest. Each kind's export and smoke-input steps read its own
    fields besides these."""

    @property
    def metrics(self) -> Mapping[str, Mapping[str, object]]:
        """Metric groups: the kind's baseline and "fine_tuned", each of named figures."""
        ...

    @property
    def timings(self) -> Mapping[str, float]: ...

    @property
    def final_loss(self) -> float | None: ...

    @property
    def steps(self) -> StepsSummary | None: ...

    @property
    def held_out_scores(self) -> HeldOutScores | None:
        """Each candidate's score on each held-out example, for the gate's paired test."""
        ...


def phase_timings(started: float, trained_at: float, evaluated_at: float) -> dict[str, float]:
    """A fine-tuning's `timings` from `time.monotonic()` readings: seconds spent preparing (the
    base model, the data, the baseline), training, and evaluating until now."""
    return {
        "prepare_s": trained_at - started,
        "train_s": evaluated_at - trained_at,
        "evaluate_s": time.monotonic() - evaluated_at,
    }
