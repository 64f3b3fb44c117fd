"""One optimiser step per batch inside a step budget, as every kind's training loop takes it:
back-propagate, clip, step the optimiser and the learning-rate schedule, count the step against
the budget and report progress."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import torch

from tasks.training.progress import TrainingProgress
from tasks.training.step_budget import StepBudget, budgeted_linear_schedule

MAX_GRAD_NORM = 1.0


@dataclass
class BudgetedOptimizer:
    name: str  # the kind, as progress lines name it
    optimizer: torch.optim.Optimizer
    budget: StepBudget
    schedule: torch.optim.lr_scheduler.LambdaLR = field(init=False)
    progress: TrainingProgress = field(init=False)

    def __post_init__(self) -> None:
        self.schedule = budgeted_linear_schedule(self.optimizer, self.budget)
        self.progress = TrainingProgress(self.name, self.budget.total)

    def step(
        self,
        loss: torch.Tensor,
        parameters: Iterable[torch.Tensor],
        stop_because: str | None = None,
    ) -> None:
        """Train on `loss`; `stop_because` ends training after this step, for that reason."""
        self.optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(parameters, MAX_GRAD_NORM)
        self.optimizer.step()
        self.schedule.step()
        self.budget.step_done()
        if stop_because is not None:
            self.budget.stop(stop_because)
        self.progress.total_steps = self.budget.total
        self.progress.step(loss.item())

    @property
    def final_loss(self) -> float | None:
        return self.progress.final_loss
