"""What each TargetModel an endpoint has loaded costs and how much customers call it.

A record is kept for every TargetModel loaded since the endpoint started, loaded now or not: its
last measured footprint (the PSS of its load) sizes the memory reserved for its next load, and
its customer calls in the last hour tell a warm-up job which models still earn their place.
Warm-up calls mark a model as recently used for LRU eviction but are not customer traffic.
"""

from __future__ import annotations

import statistics
import time
from collections import deque
from dataclasses import dataclass, field

from mme_factory.capacity import FOOTPRINT_PER_TARBALL_BYTE

# Before this endpoint has measured any TargetModel, a load reserves its tarball's size times
# this; once one is measured the endpoint's own ratio replaces it.
DEFAULT_FOOTPRINT_PER_TARBALL_BYTE = FOOTPRINT_PER_TARBALL_BYTE
HOUR_S = 3600.0
BUCKET_S = 60.0


class SlidingHourCount:
    """Events in the last hour, in one-minute buckets: bounded memory at any rate."""

    def __init__(self) -> None:
        self._buckets: deque[list[float]] = deque()  # [bucket start (unix s), count]

    def add(self, now: float | None = None) -> None:
        now = time.time() if now is None else now
        start = now - now % BUCKET_S
        if self._buckets and self._buckets[-1][0] == start:
            self._buckets[-1][1] += 1
        else:
            self._buckets.append([start, 1])
        self._forget(now)

    def count(self, now: float | None = None) -> int:
        self._forget(time.time() if now is None else now)
        return int(sum(count for _, count in self._buckets))

    def _forget(self, now: float) -> None:
        while self._buckets and self._buckets[0][0] <= now - HOUR_S:
            self._buckets.popleft()


@dataclass
class TargetModelUsage:
    footprint_bytes: int = 0
    tarball_bytes: int = 0
    last_invoked_unix: float | None = None
    invocations: SlidingHourCount = field(default_factory=SlidingHourCount)


class ModelUsage:
    """Per TargetModel key: footprint and customer traffic, for every model ever loaded here."""

    def __init__(self) -> None:
        self._records: dict[str, TargetModelUsage] = {}

    def loaded(self, key: str, footprint_bytes: int, tarball_bytes: int) -> None:
        record = self._records.setdefault(key, TargetModelUsage())
        record.footprint_bytes, record.tarball_bytes = footprint_bytes, tarball_bytes

    def invoked(self, key: str) -> None:
        """A customer call (not a warm-up) to a loaded model."""
        record = self._records.get(key)
        if record is None:
            return  # only a model loaded here has a record
        record.last_invoked_unix = time.time()
        record.invocations.add(record.last_invoked_unix)

    def expected_footprint(self, key: str, tarball_bytes: int) -> int:
        """Bytes to reserve for loading `key`: its last footprint here, else an estimate."""
        record = self._records.get(key)
        if record is not None and record.footprint_bytes > 0:
            return record.footprint_bytes
        ratios = [
            known.footprint_bytes / known.tarball_bytes
            for known in self._records.values()
            if known.footprint_bytes > 0 and known.tarball_bytes > 0
        ]
        ratio = statistics.median(ratios) if ratios else DEFAULT_FOOTPRINT_PER_TARBALL_BYTE
        return round(tarball_bytes * ratio)

    def largest_footprint(self) -> int:
        """The most memory one TargetModel has taken here; 0 before any was measured."""
        return max((record.footprint_bytes for record in self._records.values()), default=0)

    def describe(self, loaded: set[str]) -> dict[str, dict[str, object]]:
        return {
            key: {
                "footprint_bytes": record.footprint_bytes,
                "loaded": key in loaded,
                "invocations_last_hour": record.invocations.count(),
                "last_invoked_unix": record.last_invoked_unix,
            }
            for key, record in self._records.items()
        }
