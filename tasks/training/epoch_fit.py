"""Whether an epoch of training predicted every training example right: a complete fit, after
which more epochs only sharpen what the model already gets right."""

from __future__ import annotations

from dataclasses import dataclass

FIT = "an epoch predicted every training example right"


@dataclass
class EpochFit:
    examples: int  # in one epoch
    seen: int = 0
    right: int = 0

    def add(self, seen: int, right: int) -> bool:
        """Count one batch; True when it ends an epoch in which every example was right."""
        self.seen += seen
        self.right += right
        if self.seen < self.examples:
            return False
        fit = self.right == self.seen
        self.seen = self.right = 0
        return fit
