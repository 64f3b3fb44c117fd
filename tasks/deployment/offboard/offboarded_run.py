"""A run of a customer that was offboarded while it ran: it removes what it made, and stops.

Training runs outside the customer lock, so an offboarding can finish while a run of the same
customer still trains; the run checks the tombstone under the lock, before anything is
uploaded or numbered, and deletes its own run directory. A run that lost the lock to the
offboarding may still have written after it (its run directory, a version record): when it
fails, it looks for the tombstone again and deletes those too.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
from pathlib import Path

from mme_factory.errors import MmeFactoryError
from mme_factory.manifest import CustomerOffboarded, read_tombstone
from mme_factory.naming import version_record_key
from mme_factory.store import ArtifactStore

logger = logging.getLogger("mme_factory.offboard")


def discard_if_offboarded(store: ArtifactStore, customer: str, run_path: Path) -> None:
    """Delete the run directory and raise CustomerOffboarded if the customer was offboarded."""
    found = read_tombstone(store, customer)
    if found is None:
        return
    _delete_run_directory(run_path)
    raise CustomerOffboarded(
        customer, f"{found.offboarded_at or 'an unknown time'}; this run's directory was deleted"
    )


def clean_up_if_offboarded(store: ArtifactStore, customer: str, run_path: Path) -> str | None:
    """After a failed run: if the customer is offboarded, delete the run directory and any
    version record written after the offboarding deleted it (the tombstone keeps the number);
    when the customer was offboarded, in words."""
    try:
        found = read_tombstone(store, customer)
    except MmeFactoryError as error:
        logger.warning("customer %s: could not look for a tombstone: %s", customer, error)
        return None
    if found is None:
        return None
    _delete_run_directory(run_path)
    store.delete(version_record_key(customer))
    return f"{found.offboarded_at or 'an unknown time'}, while this run published"


def _delete_run_directory(run_path: Path) -> None:
    shutil.rmtree(run_path, ignore_errors=True)
    with contextlib.suppress(OSError):  # another run of the customer may have its folder there
        run_path.parent.rmdir()
