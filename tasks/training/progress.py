"""Progress reports from long training loops: steps, loss and rate, to a logger."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

logger = logging.getLogger("mme_factory.training")


@dataclass
class TrainingProgress:
    """Logs every `every` steps and at the end; Prefect shows these lines in the run's logs."""

    name: str
    total_steps: int
    every: int = 10
    started: float = field(default_factory=time.monotonic)
    losses: list[float] = field(default_factory=list)

    def step(self, loss: float) -> None:
        self.losses.append(loss)
        done = len(self.losses)
        if done % self.every == 0 or done == self.total_steps:
            recent = self.losses[-self.every :]
            elapsed = time.monotonic() - self.started
            logger.info(
                "%s: step %d/%d, loss %.4f, %.1f s elapsed",
                self.name,
                done,
                self.total_steps,
                sum(recent) / len(recent),
                elapsed,
            )

    @property
    def final_loss(self) -> float | None:
        tail = self.losses[-self.every :]
        return sum(tail) / len(tail) if tail else None
