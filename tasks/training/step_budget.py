"""How many optimiser steps fit in a kind's training-time budget, re-estimated as steps run.

The budget covers the whole training call of a kind: loading the base, the baseline, the steps
and the final evaluation. From its first steps the run measures seconds per step and cuts the
planned total so that the steps end `reserve_s` (the caller's estimate of the final evaluation)
before the budget does. Each step re-estimates the pace over all steps since the first, so a few
long batches early on cut the total only until the faster ones bring it back (never above the
plan); the learning-rate schedule follows the current total.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TypeVar

import torch

from mme_factory.records import StepsSummary

# Steps timed before the first estimate: the first step is slow (allocations, lazy init).
ESTIMATE_AFTER_STEPS = 3

Batch = TypeVar("Batch")


@dataclass
class StepBudget:
    planned: int
    budget_s: float | None
    started: float  # the clock's reading when the kind's training call began
    reserve_s: float = 0.0
    clock: Callable[[], float] = time.monotonic
    estimate_after: int = ESTIMATE_AFTER_STEPS
    total: int = field(init=False)
    done: int = field(init=False, default=0)
    stopped_because: str | None = field(init=False, default=None)
    _first_step_ended: float | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        if self.planned < 1:
            raise ValueError(f"planned steps must be at least 1, got {self.planned}")
        self.total = self.planned

    @classmethod
    def from_minutes(
        cls,
        planned: int,
        minutes: float | None,
        started: float,
        reserve_s: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> StepBudget:
        return cls(planned, None if minutes is None else minutes * 60, started, reserve_s, clock)

    @property
    def deadline(self) -> float | None:
        if self.budget_s is None:
            return None
        return self.started + self.budget_s - self.reserve_s

    @property
    def finished(self) -> bool:
        return self.done >= self.total

    def step_done(self) -> None:
        """Count one optimiser step and set the total to what fits before the deadline."""
        self.done += 1
        now = self.clock()
        if self.done == 1:
            self._first_step_ended = now
        deadline = self.deadline
        if deadline is None or self.finished:
            return
        if now >= deadline:
            self.total = self.done
            return
        timed = self.done - 1
        if timed < self.estimate_after or self._first_step_ended is None:
            return
        per_step = (now - self._first_step_ended) / timed
        fits = self.done + int((deadline - now) / per_step) if per_step > 0 else self.total
        self.total = max(self.done, min(self.planned, fits))

    def stop(self, reason: str) -> None:
        """End training after the steps done so far, for a reason other than the budget."""
        if self.finished:
            return
        self.stopped_because = reason
        self.total = self.done

    @property
    def stopped_by_budget(self) -> bool:
        return self.total < self.planned and self.stopped_because is None

    def summary(self) -> StepsSummary:
        return StepsSummary(
            planned=self.planned,
            run=self.done,
            budget_s=self.budget_s,
            stopped_by_budget=self.stopped_by_budget,
            stopped_because=self.stopped_because,
        )


def budgeted_linear_schedule(
    optimizer: torch.optim.Optimizer, budget: StepBudget, warmup: float = 0.1
) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warm-up over a tenth of the planned steps, then linear decay to zero at the
    budget's current total, which may shrink while training runs."""
    planned_warm = max(1, int(budget.planned * warmup))

    def factor(step: int) -> float:
        total = budget.total
        warm = min(planned_warm, max(1, total // 2))
        if step < warm:
            return (step + 1) / warm
        return max(0.0, (total - step) / max(1, total - warm))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def budgeted_batches(budget: StepBudget, epoch: Callable[[], Iterable[Batch]]) -> Iterator[Batch]:
    """Batches of one `epoch()` after another until the budget's current total of steps is done;
    the caller calls `budget.step_done()` for each batch it trains on (it may skip some)."""
    while not budget.finished:
        for batch in epoch():
            yield batch
            if budget.finished:
                return
