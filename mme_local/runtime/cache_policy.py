"""How one endpoint's model cache is bounded: its memory budget, waits and parallel loads."""

from __future__ import annotations

from dataclasses import dataclass

from mme_factory.model_archive import ArchiveLimits

DEFAULT_LOAD_CONCURRENCY = 4


@dataclass(frozen=True)
class CachePolicy:
    budget_bytes: int
    # A caller waits this long for its model (then a 429), a load this long for memory (a 503).
    load_wait_s: float
    limits: ArchiveLimits
    load_concurrency: int = DEFAULT_LOAD_CONCURRENCY
