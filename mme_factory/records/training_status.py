"""Where a kind's training stands, as run.json and its metadata.json record it."""

from __future__ import annotations

from enum import StrEnum


class TrainingStatus(StrEnum):
    """A kind's status, rewritten as each stage of its training ends."""

    TRAINING = "training"  # started; once trained: metrics, final loss, steps, timings
    EXPORTING = "exporting"  # evaluated and accepted by the gate; export under way
    EXPORTED = "exported"  # the export passed its parity check: the only status packaged
    REJECTED = "rejected"  # no candidate passed the gate and nothing is live; nothing exported
    CHAMPION_KEPT = "champion_kept"  # the gate kept the live version; nothing exported
    FAILED = "failed"  # a stage raised; its failure is recorded

    @property
    def settled(self) -> bool:
        """A status a kind ends with when nothing went wrong."""
        return self in (
            TrainingStatus.EXPORTED,
            TrainingStatus.REJECTED,
            TrainingStatus.CHAMPION_KEPT,
        )


class TrainingStage(StrEnum):
    """The stage of a kind's training that a recorded failure names."""

    TRAIN = "train"
    EVALUATE = "evaluate"
    EXPORT = "export"
