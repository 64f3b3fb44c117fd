"""A memory figure that remembers whether it was measured here, measured on a named device, or
modeled from stated sources."""

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

    @classmethod
    def measured_on(cls, device: str, mib: float) -> Figure:
        """Measured elsewhere, on the named device (a GPU run), not by this run."""
        return cls(mib, frozenset({f"{MEASURED} on {device}"}))

    def __add__(self, other: Figure) -> Figure:
        return Figure(self.mib + other.mib, self.sources | other.sources)

    def times(self, count: int) -> Figure:
        return Figure(self.mib * count, self.sources)

    @property
    def source(self) -> str:
        """measured, modeled, measured+modeled for a sum of both, `measured on DEVICE` for a
        figure from a GPU run, or none for nothing at all."""
        known = [name for name in (MEASURED, MODELED) if name in self.sources]
        others = sorted(self.sources - {MEASURED, MODELED})
        return "+".join(known + others) or "none"

    @property
    def device(self) -> str | None:
        """The device a `measured_on` figure (or a sum holding one) was measured on."""
        prefix = f"{MEASURED} on "
        found = sorted(name[len(prefix) :] for name in self.sources if name.startswith(prefix))
        return found[0] if found else None

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
