"""Every write of a customer's manifest key (`registry/{customer}.json`), fenced by its lock.

A write is conditional on the version read (S3's If-Match, or If-None-Match when there is none),
and with a fence, also on the lock: the document read must not carry a later holder's
generation, and the lock must still name this holder. Whatever is written carries the writer's
generation, so a run that lost its lock, however late it wakes, finds its write refused.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime

from mme_factory.lease_fence import Fence
from mme_factory.manifest import (
    CustomerOffboarded,
    ManifestError,
    parse_document,
    read_document_versioned,
)
from mme_factory.naming import manifest_key
from mme_factory.records import CustomerManifest, Tombstone
from mme_factory.store import ArtifactStore, StoreUnavailable

WRITE_ATTEMPTS = 3
RAISE_ATTEMPTS = 5

Document = CustomerManifest | Tombstone

logger = logging.getLogger("mme_factory.manifest")


class ManifestChanged(ManifestError):
    """Another writer changed the manifest between this run's read and its write."""


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def encode_document(document: Document) -> bytes:
    if isinstance(document, CustomerManifest):
        document.updated_at = now()
    return document.to_json().encode()


def write_document(
    store: ArtifactStore,
    customer: str,
    build: Callable[[Document | None], Document],
    fence: Fence | None,
    replace_unreadable: bool = False,
) -> Document:
    """Write what `build` makes of the current document, only if no one wrote it since it was
    read and, with a fence, only while this run holds the customer's lock. With
    `replace_unreadable`, an unreadable document is replaced as if there were none."""
    key = manifest_key(customer)
    current, tag = read_current(store, customer, replace_unreadable)
    if fence is not None:
        fence.refuse_older_than((current.fence or 0) if current else 0, store, customer)
        fence.confirm(store, customer)
    document = build(current)
    if fence is not None:
        document.fence = fence.generation
    data = encode_document(document)
    for attempt in range(WRITE_ATTEMPTS):
        try:
            if tag is None:
                written = store.create_exclusive(key, data)
            else:
                written = store.replace_if(key, data, tag)
        except StoreUnavailable:
            if attempt == WRITE_ATTEMPTS - 1:
                raise
            found = store.read_versioned(key)
            if found is not None and found.data == data:
                return document  # the write went through; only its answer was lost
            if (found.tag if found is not None else None) == tag:
                continue
            written = None
        if written is None:
            raise ManifestChanged(
                f"{store.uri(key)} was changed by another run while this run updated it; "
                "nothing was written: check the manifest and run again"
            )
        return document
    raise AssertionError("unreachable")


def read_current(
    store: ArtifactStore, customer: str, replace_unreadable: bool
) -> tuple[Document | None, str | None]:
    if not replace_unreadable:
        return read_document_versioned(store, customer)
    found = store.read_versioned(manifest_key(customer))
    if found is None:
        return None, None
    try:
        return parse_document(found.data, customer), found.tag
    except ManifestError:
        return None, found.tag


def update_manifest(
    store: ArtifactStore,
    customer: str,
    change: Callable[[CustomerManifest], None],
    fence: Fence | None = None,
) -> CustomerManifest:
    """Apply `change` to the customer's manifest (an empty one when there is none) and write it.

    A tombstone raises CustomerOffboarded: only `reinstate` replaces it.
    """

    def changed(current: Document | None) -> Document:
        if isinstance(current, Tombstone):
            raise CustomerOffboarded(customer, current.offboarded_at or "an unknown time")
        manifest = current if current is not None else CustomerManifest(customer=customer)
        change(manifest)
        return manifest

    written = write_document(store, customer, changed, fence)
    assert isinstance(written, CustomerManifest)
    return written


def raise_fence(store: ArtifactStore, customer: str, fence: Fence) -> None:
    """Record `fence`'s generation in the customer's manifest or tombstone (an empty manifest
    when there is neither), so that no earlier holder can write it any more."""

    def fenced(current: Document | None) -> Document:
        return current if current is not None else CustomerManifest(customer=customer)

    for _ in range(RAISE_ATTEMPTS):
        try:
            current, _tag = read_document_versioned(store, customer)
            if current is not None and (current.fence or 0) >= fence.generation:
                return
            write_document(store, customer, fenced, fence)
            return
        except ManifestChanged:
            continue
        except ManifestError as error:
            # An unreadable manifest: every fenced write reads it and is refused anyway.
            logger.warning("customer %s: the fence was not raised: %s", customer, error)
            return
    raise ManifestError(
        f"customer {customer}: {store.uri(manifest_key(customer))} kept changing while this "
        "run took the lock over; run again"
    )
