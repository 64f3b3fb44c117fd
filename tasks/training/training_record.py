"""What a training run has learnt so far, kept on disk as each stage of each kind ends.

A kind's `<kind>/metadata.json` and its entry in `run.json` are rewritten at every stage:

    training     started; once trained: metrics, final loss, steps, timings
    exporting    evaluated and accepted by the gate; export under way
    exported     the export passed its parity check (the only status packaging picks up)
    rejected     the gate refused the model; nothing exported
    failed       a stage raised: `failure` names the stage (train, evaluate, export),
                 the error type and its message; what earlier stages learnt is kept

so a failed export, or a process that dies, still leaves the evaluation and its timings.
"""

from __future__ import annotations

import resource
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mme_factory.errors import MmeFactoryError
from tasks.training.run_directory import RunDirectory

OUTCOME_KEYS = ("status", "metrics", "gate", "timings", "steps", "failure")
# Statuses a kind ends with when nothing went wrong; any other status means it failed.
SETTLED_STATUSES = ("exported", "rejected")


class TrainingFailed(MmeFactoryError):
    """A kind's training, evaluation or export raised; what it learnt before is on disk."""

    def __init__(self, message: str, kind: str = "", stage: str = "", run_dir: str = "") -> None:
        super().__init__(message)
        self.kind, self.stage, self.run_dir = kind, stage, run_dir


def peak_memory_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@dataclass
class TrainingRun:
    run: RunDirectory
    record: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def open(cls, path: Path) -> TrainingRun:
        run = RunDirectory.open(path)
        return cls(run, run.read_json("run.json"))

    @property
    def outcomes(self) -> dict[str, dict[str, Any]]:
        return self.record["kinds"]

    @property
    def rejected(self) -> list[str]:
        return [kind for kind, o in self.outcomes.items() if o["status"] == "rejected"]

    @property
    def failed(self) -> list[str]:
        """Kinds that raised, or whose run stopped before they reached a final status."""
        return [kind for kind, o in self.outcomes.items() if o["status"] not in SETTLED_STATUSES]

    def save(self) -> None:
        self.run.write_json("run.json", self.record)


@dataclass
class KindRecord:
    """One kind's metadata as training goes, written through to its file and to run.json."""

    kind: str
    result: TrainingRun
    metadata: dict[str, Any]
    started: float = field(default_factory=time.monotonic)

    @property
    def timings(self) -> dict[str, float]:
        return self.metadata.setdefault("timings", {})

    @property
    def path(self) -> Path:
        return self.result.run.kind_dir(self.kind) / "metadata.json"

    def save(self, status: str) -> None:
        self.metadata["status"] = status
        self.timings["total_s"] = time.monotonic() - self.started
        self.timings["peak_rss_mb"] = peak_memory_mb()
        self.result.run.write_json(f"{self.kind}/metadata.json", self.metadata)
        self.result.outcomes[self.kind] = {
            key: self.metadata[key] for key in OUTCOME_KEYS if key in self.metadata
        }
        self.result.save()

    def fail(self, stage: str, error: BaseException) -> TrainingFailed:
        """Record the failure; returns the error to raise, naming where the record is."""
        self.metadata["failure"] = {
            "stage": stage,
            "error": type(error).__name__,
            "message": str(error),
        }
        self.save("failed")
        return TrainingFailed(
            f"{self.kind}: {stage} failed ({type(error).__name__}: {error}); the metrics, gate "
            f"verdict and timings it reached are kept in {self.path}",
            self.kind,
            stage,
            str(self.result.run.path),
        )
