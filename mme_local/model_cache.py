"""Which TargetModels an endpoint has loaded, in least-recently-used order, and their sizes.

What is loaded changes in one place only: `ModelCache.changing()`, held by one task at a time in
arrival order. Loads, evictions, unloads, file deletions and restarts of the model server all run
inside it, and `add`, `remove` and `clear` refuse to run outside it, so the cache, the server's
loaded models and the files on disk cannot drift apart (a reload of a model whose eviction is
still deleting its files, say).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import OrderedDict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from mme_local.target_model import TargetModel


@dataclass
class LoadedModel:
    target: TargetModel
    sha256: str = ""
    memory_bytes: int = 0
    in_flight: int = 0
    last_used: float = field(default_factory=time.monotonic)
    timings_s: dict[str, float] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.target.triton_name

    def to_dict(self) -> dict[str, object]:
        return {
            "target_model": self.target.key,
            "triton_name": self.name,
            "sha256": self.sha256,
            "memory_bytes": self.memory_bytes,
            "in_flight": self.in_flight,
            "idle_s": round(time.monotonic() - self.last_used, 3),
            "timings_s": self.timings_s,
        }


class CacheChangedOutsideItsLock(RuntimeError):
    """A change to the cache that did not hold `ModelCache.changing()`: a bug in the caller."""


class ModelCache:
    """Loaded models, least recently used first."""

    def __init__(self) -> None:
        self._entries: OrderedDict[str, LoadedModel] = OrderedDict()
        self._lock = asyncio.Lock()
        self._holder: asyncio.Task[object] | None = None

    @contextlib.asynccontextmanager
    async def changing(self) -> AsyncIterator[None]:
        """The endpoint's one serialisation point for changes to what is loaded."""
        async with self._lock:
            self._holder = asyncio.current_task()
            try:
                yield
            finally:
                self._holder = None

    @property
    def changes_in_progress(self) -> bool:
        return self._lock.locked()

    def _require_change_lock(self) -> None:
        if self._holder is None or self._holder is not asyncio.current_task():
            raise CacheChangedOutsideItsLock("the model cache changes only inside changing()")

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, name: str) -> bool:
        return name in self._entries

    def models(self) -> list[LoadedModel]:
        return list(self._entries.values())

    def get(self, name: str) -> LoadedModel | None:
        """The loaded model, marked as most recently used; None when not loaded."""
        entry = self._entries.get(name)
        if entry is not None:
            self._entries.move_to_end(name)
            entry.last_used = time.monotonic()
        return entry

    def add(self, entry: LoadedModel) -> None:
        self._require_change_lock()
        self._entries[entry.name] = entry
        self._entries.move_to_end(entry.name)

    def remove(self, name: str) -> LoadedModel | None:
        self._require_change_lock()
        return self._entries.pop(name, None)

    def clear(self) -> None:
        self._require_change_lock()
        self._entries.clear()

    def least_recently_used_idle(self, exclude: str | None = None) -> LoadedModel | None:
        """The eviction candidate: the LRU model with no request in flight."""
        for entry in self._entries.values():
            if entry.in_flight == 0 and entry.name != exclude:
                return entry
        return None
