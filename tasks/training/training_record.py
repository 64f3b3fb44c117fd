"""What a training run has learnt so far, kept on disk as each stage of each kind ends.

A kind's `<kind>/metadata.json` (`KindMetadata`, whose docstring lists the statuses) and its
entry in `run.json` (`RunRecord`) are rewritten at every stage, so a failed export, or a
process that dies, still leaves the evaluation and its timings.
"""

from __future__ import annotations

import resource
import time
from dataclasses import dataclass, field
from pathlib import Path

from mme_factory.errors import MmeFactoryError
from mme_factory.records import (
    FailureRecord,
    KindMetadata,
    KindOutcome,
    RunRecord,
    TrainingStage,
    TrainingStatus,
)
from tasks.training.run_directory import RunDirectory


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
    record: RunRecord

    @classmethod
    def open(cls, path: Path) -> TrainingRun:
        run = RunDirectory.open(path)
        return cls(run, run.record())

    @property
    def outcomes(self) -> dict[str, KindOutcome]:
        return self.record.kinds

    @property
    def rejected(self) -> list[str]:
        return self.record.kinds_with(TrainingStatus.REJECTED)

    @property
    def exported(self) -> list[str]:
        return self.record.kinds_with(TrainingStatus.EXPORTED)

    @property
    def champions_kept(self) -> list[str]:
        return self.record.kinds_with(TrainingStatus.CHAMPION_KEPT)

    @property
    def failed(self) -> list[str]:
        """Kinds that raised, or whose run stopped before they reached a final status."""
        return [kind for kind, o in self.outcomes.items() if not o.status.settled]

    def save(self) -> None:
        self.record.write(self.run.path)


@dataclass
class KindRecord:
    """One kind's metadata as training goes, written through to its file and to run.json."""

    result: TrainingRun
    metadata: KindMetadata
    started: float = field(default_factory=time.monotonic)

    @property
    def kind(self) -> str:
        return self.metadata.kind

    @property
    def timings(self) -> dict[str, float]:
        return self.metadata.timings

    @property
    def directory(self) -> Path:
        return self.result.run.kind_dir(self.kind)

    @property
    def path(self) -> Path:
        return KindMetadata.path_in(self.directory)

    def save(self, status: TrainingStatus) -> None:
        self.metadata.status = status
        self.timings["total_s"] = time.monotonic() - self.started
        self.timings["peak_rss_mb"] = peak_memory_mb()
        self.metadata.write(self.directory)
        self.result.record.record_outcome(self.kind, self.metadata)
        self.result.save()

    def fail(self, stage: TrainingStage, error: BaseException) -> TrainingFailed:
        """Record the failure; returns the error to raise, naming where the record is."""
        self.metadata.failure = FailureRecord(
            stage=stage, error=type(error).__name__, message=str(error)
        )
        self.save(TrainingStatus.FAILED)
        return TrainingFailed(
            f"{self.kind}: {stage} failed ({type(error).__name__}: {error}); the metrics, gate "
            f"verdict and timings it reached are kept in {self.path}",
            self.kind,
            stage,
            str(self.result.run.path),
        )
