"""Reinstating an offboarded customer: the one way its tombstone is replaced.

Under the customer lock, the highest version the tombstone kept goes back into the version
record, then the tombstone becomes an empty manifest: the customer can be onboarded again, and
its versions continue after the highest it ever had.
"""

from __future__ import annotations

from dataclasses import dataclass

from mme_factory.errors import MmeFactoryError
from mme_factory.manifest import read_document_versioned
from mme_factory.naming import check_customer_id, manifest_key
from mme_factory.records import CustomerManifest, Tombstone
from mme_factory.settings import Settings
from mme_factory.store import open_store
from tasks.deployment.customer_lock import customer_lock
from tasks.deployment.fenced_manifest import Document, write_document
from tasks.deployment.version_numbers import keep_highest


class NotOffboarded(MmeFactoryError):
    """Only an offboarded customer can be reinstated."""


@dataclass(frozen=True)
class Reinstated:
    customer: str
    offboarded_at: str | None
    next_version: int

    def text(self) -> str:
        return (
            f"customer {self.customer} reinstated (offboarded at {self.offboarded_at}); "
            f"its next onboarding publishes v{self.next_version}"
        )


def reinstate_customer(settings: Settings, customer: str) -> Reinstated:
    """Replace the customer's tombstone with an empty manifest; NotOffboarded if there is none."""
    try:
        check_customer_id(customer)
    except ValueError as error:
        raise NotOffboarded(str(error)) from None
    store = open_store(settings.store, settings)
    sagemaker = settings.sagemaker
    with customer_lock(store, customer, sagemaker.lock_wait_s, sagemaker.lock_stale_s) as lease:
        document, _ = read_document_versioned(store, customer)
        if not isinstance(document, Tombstone):
            state = "has a manifest" if document is not None else "has no manifest or tombstone"
            raise NotOffboarded(
                f"customer {customer} is not offboarded: {store.uri(manifest_key(customer))} "
                f"{state}; nothing to reinstate"
            )
        tombstone = document
        keep_highest(store, customer, tombstone.highest_version)

        def emptied(current: Document | None) -> Document:
            if not isinstance(current, Tombstone):
                raise NotOffboarded(f"customer {customer} was reinstated meanwhile")
            return CustomerManifest(customer=customer)

        write_document(store, customer, emptied, lease.fence)
    return Reinstated(customer, tombstone.offboarded_at, tombstone.highest_version + 1)
