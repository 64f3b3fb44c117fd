"""An endpoint's memory bookkeeping: the latest reading, what loads reserved, what unloads free.

The reading is the one taken last of Triton and its stubs; a reading that started before the one
kept never replaces it. A load's reservation counts only as far as the reading does not show
its model holding it yet, so a finished load is never counted twice.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from mme_local.runtime.model_server import ServerMemory


class ChangeSignal:
    """Wakes every task waiting for a change; cheap to notify when nobody waits."""

    def __init__(self) -> None:
        self._event = asyncio.Event()
        self._watched = False

    def watch(self) -> asyncio.Event:
        """The event the next `notify` sets: take it before checking, then wait on it."""
        self._watched = True
        return self._event

    def notify(self) -> None:
        if self._watched:
            self._event.set()
            self._event, self._watched = asyncio.Event(), False


@dataclass
class MemoryLedger:
    """Bytes used (the latest reading), reserved for loads in flight and being unloaded."""

    budget_bytes: int
    reading: ServerMemory = field(default_factory=lambda: ServerMemory(0.0, 0, 0))
    reserved: dict[str, int] = field(default_factory=dict)  # model name -> bytes
    unloading: dict[str, int] = field(default_factory=dict)  # model name -> its footprint

    def publish(self, reading: ServerMemory) -> bool:
        if reading.started < self.reading.started:
            return False
        self.reading = reading
        return True

    def reserved_bytes(self) -> int:
        """Reservations not yet covered by what the reading shows those loads holding."""
        held = self.reading.by_model
        return sum(max(size - held.get(name, 0), 0) for name, size in self.reserved.items())

    def committed_bytes(self) -> int:
        return self.reading.pss_bytes + self.reserved_bytes()

    def freeing_bytes(self) -> int:
        """What models being unloaded still hold, as far as the reading shows."""
        held = self.reading.by_model
        return sum(
            min(size, held[name]) if held else size
            for name, size in self.unloading.items()
            if not held or name in held
        )
