"""A run of a customer that was offboarded while it trained: it removes what it made, and stops.

Training runs outside the customer lock, so an offboarding can finish while a run of the same
customer still trains; the run checks the tombstone under the lock, before anything is
uploaded or numbered, and deletes its own run directory.
"""

from __future__ import annotations

import contextlib
import shutil
from pathlib import Path

from mme_factory.manifest import CustomerOffboarded, read_tombstone
from mme_factory.store import ArtifactStore


def discard_if_offboarded(store: ArtifactStore, customer: str, run_path: Path) -> None:
    """Delete the run directory and raise CustomerOffboarded if the customer was offboarded."""
    found = read_tombstone(store, customer)
    if found is None:
        return
    shutil.rmtree(run_path, ignore_errors=True)
    with contextlib.suppress(OSError):  # another run of the customer may have its folder there
        run_path.parent.rmdir()
    raise CustomerOffboarded(
        customer, f"{found.offboarded_at or 'an unknown time'}; this run's directory was deleted"
    )
