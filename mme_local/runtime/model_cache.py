"""Which TargetModels an endpoint has loaded, in least-recently-used order, and their sizes.

The bookkeeping of what is loaded changes in one place only: `ModelCache.changing()`, a short
critical section held by one task at a time, and `add`, `remove` and `clear` refuse to run
outside it. Inside it a caller only decides (admit a load and reserve its memory, pick eviction
victims, record a finished load); downloads, Triton loads and unloads run outside it, so loads of
different models proceed at once and a warm model's requests never wait for any of them.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Collection
from dataclasses import dataclass, field

from mme_local.runtime.target_model import TargetModel


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
        """The endpoint's one serialisation point for changes to what is loaded; never held
        across a download, a load or an unload."""
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

    def peek(self, name: str) -> LoadedModel | None:
        """The loaded model without marking it used."""
        return self._entries.get(name)

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

    def least_recently_used_idle(self, exclude: Collection[str] = ()) -> LoadedModel | None:
        """The eviction candidate: the LRU model with no request in flight, not in `exclude`."""
        for entry in self._entries.values():
            if entry.in_flight == 0 and entry.name not in exclude:
                return entry
        return None

    def least_recent_use(self) -> float | None:
        """When the least recently used model was last used (monotonic s); None when empty."""
        return min((entry.last_used for entry in self._entries.values()), default=None)
