"""What a customer-lock holder proves its writes with: the lock's owner token and generation.

Every holder of a customer's lock gets a generation one above any earlier holder's. The
customer's manifest records the generation of the holder that wrote it last (`fence`), and a
holder that takes over a stale lock raises that record to its own generation first. A write
of the manifest is conditional on the version read, and refused when the version read carries
a higher generation or the lock no longer names this holder: a run that lost its lock cannot
write, even if it has not yet noticed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from mme_factory.errors import MmeFactoryError
from mme_factory.store_protocol import ArtifactStore


class LeaseLost(MmeFactoryError):
    """The run no longer holds the customer's lock: another run took it over."""


def parse_lock(data: bytes) -> dict[str, Any]:
    """A lock's record; empty when it is not a JSON object."""
    try:
        record = json.loads(data)
    except (ValueError, RecursionError):
        return {}
    return record if isinstance(record, dict) else {}


def lock_generation(record: dict[str, Any]) -> int:
    generation = record.get("generation")
    return generation if isinstance(generation, int) and generation > 0 else 0


@dataclass(frozen=True)
class Fence:
    lock_key: str
    owner: str
    generation: int

    def confirm(self, store: ArtifactStore, customer: str) -> None:
        """Raise LeaseLost unless the lock still names this holder."""
        found = store.read_versioned(self.lock_key)
        record = parse_lock(found.data) if found is not None else {}
        if record.get("owner") != self.owner or lock_generation(record) != self.generation:
            raise LeaseLost(
                f"customer {customer}: this run (lock generation {self.generation}) lost "
                f"{store.uri(self.lock_key)} to another run; nothing more was written"
            )

    def refuse_older_than(self, written_by: int, store: ArtifactStore, customer: str) -> None:
        """Raise LeaseLost when a later holder (generation `written_by`) wrote the manifest."""
        if written_by > self.generation:
            raise LeaseLost(
                f"customer {customer}: its manifest was written under lock generation "
                f"{written_by}, after this run's ({self.generation}) lost "
                f"{store.uri(self.lock_key)}; nothing more was written"
            )
