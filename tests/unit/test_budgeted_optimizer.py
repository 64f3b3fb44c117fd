"""One optimiser step per batch, counted against the step budget and reported as progress."""

from __future__ import annotations

import torch

from tasks.training.budgeted_optimizer import BudgetedOptimizer
from tasks.training.step_budget import StepBudget


def quadratic() -> tuple[torch.nn.Parameter, BudgetedOptimizer]:
    weight = torch.nn.Parameter(torch.ones(2))
    budget = StepBudget(planned=5, budget_s=None, started=0.0)
    return weight, BudgetedOptimizer("test", torch.optim.SGD([weight], lr=0.1), budget)


def test_each_step_trains_counts_and_reports() -> None:
    weight, steps = quadratic()
    for _ in range(3):
        steps.step((weight**2).sum(), [weight])
    assert steps.budget.done == 3 and not steps.budget.finished
    assert len(steps.progress.losses) == 3
    assert steps.progress.losses[-1] < steps.progress.losses[0]
    assert steps.final_loss == sum(steps.progress.losses) / 3


def test_a_stop_reason_ends_training_after_that_step() -> None:
    weight, steps = quadratic()
    steps.step((weight**2).sum(), [weight])
    steps.step((weight**2).sum(), [weight], stop_because="fit")
    assert steps.budget.finished and steps.budget.done == 2
    assert steps.budget.stopped_because == "fit" and not steps.budget.stopped_by_budget
    assert steps.progress.total_steps == 2
