"""A memory figure that remembers whether it was measured here or modeled from stated sources."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

MEASURED = "measured"
MODELED = "modeled"


@dataclass(frozen=True)
class Figure:
    mib: float
    sources: frozenset[str] = frozenset()

    @classmethod
    def measured(cls, mib: float) -> Figure:
        return cls(mib, frozenset({MEASURED}))

    @classmethod
    def modeled(cls, mib: float) -> Figure:
        return cls(mib, frozenset({MODELED}))

    def __add__(self, other: Figure) -> Figure:
        return Figure(self.mib + other.mib, self.sources | other.sources)

    def times(self, count: int) -> Figure:
        return Figure(self.mib * count, self.sources)

    @property
    def source(self) -> str:
        """measured, modeled, measured+modeled for a sum of both, or none for nothing at all."""
        return "+".join(name for name in (MEASURED, MODELED) if name in self.sources) or "none"

    @property
    def is_modeled(self) -> bool:
        return MODELED in self.sources

    def to_dict(self) -> dict[str, Any]:
        return {"mib": round(self.mib, 3), "source": self.source}


def total(figures: list[Figure]) -> Figure:
    result = Figure(0.0)
    for figure in figures:
        result = result + figure
    return result
