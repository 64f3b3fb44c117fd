"""Progress reports from long training loops: step, loss and time left, at a bounded rate.

    classifier: step 1/240, loss 2.3051, 0.4 s elapsed, about 1m 36s left
    classifier: step 57/240, loss 1.2210, 10.1 s elapsed, about 32s left
    classifier: step 240/240, loss 0.3012, 41.9 s elapsed, done, evaluating

Inside a Prefect task run the lines go to the run's logger (the flow run's logs in the UI and
the worker's console); elsewhere to the `mme_factory.training` logger, which the CLI prints.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

LOGGER_NAME = "mme_factory.training"
# One line every this many seconds (and the first and last steps): a long run is visibly alive,
# a short one logs a handful of lines, never one per step.
REPORT_INTERVAL_S = 10.0


def training_logger() -> logging.Logger | logging.LoggerAdapter[Any]:
    """The current Prefect run's logger inside a flow or task run, else the training logger."""
    from prefect.context import FlowRunContext, TaskRunContext

    if TaskRunContext.get() or FlowRunContext.get():
        from prefect.logging import get_run_logger

        return get_run_logger()
    return logging.getLogger(LOGGER_NAME)


def duration(seconds: float) -> str:
    """`45s`, `3m 20s`, `1h 05m`: precise enough for an estimate, short enough to read."""
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m {seconds % 60:02d}s"
    return f"{seconds // 3600}h {seconds % 3600 // 60:02d}m"


@dataclass
class TrainingProgress:
    """Counts steps and logs the mean loss since the last line and an estimate of the time left."""

    name: str
    total_steps: int
    interval_s: float = REPORT_INTERVAL_S
    clock: Callable[[], float] = time.monotonic
    losses: list[float] = field(default_factory=list)
    started: float = field(init=False)
    _reported_at: float | None = field(init=False, default=None)
    _reported_steps: int = field(init=False, default=0)
    _logger: logging.Logger | logging.LoggerAdapter[Any] = field(init=False)

    def __post_init__(self) -> None:
        self.started = self.clock()
        self._logger = training_logger()

    def step(self, loss: float) -> None:
        self.losses.append(loss)
        now = self.clock()
        done = len(self.losses)
        due = self._reported_at is None or now - self._reported_at >= self.interval_s
        if due or done >= self.total_steps:
            self._report(done, now)

    def _report(self, done: int, now: float) -> None:
        recent = self.losses[self._reported_steps :]
        elapsed = now - self.started
        if done >= self.total_steps:
            outlook = "done, evaluating"
        else:
            outlook = f"about {duration(elapsed / done * (self.total_steps - done))} left"
        self._logger.info(
            "%s: step %d/%d, loss %.4f, %.1f s elapsed, %s",
            self.name,
            done,
            self.total_steps,
            sum(recent) / len(recent),
            elapsed,
            outlook,
        )
        self._reported_at, self._reported_steps = now, done

    @property
    def final_loss(self) -> float | None:
        tail = self.losses[-10:]
        return sum(tail) / len(tail) if tail else None
