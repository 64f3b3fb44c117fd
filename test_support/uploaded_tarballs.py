"""Manifest entries whose tarballs are in the store, as a registration leaves them: a promote
refuses an entry whose tarball is missing."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from mme_factory.naming import model_data_prefix
from mme_factory.records import ManifestEntry
from mme_factory.store import ArtifactStore

Entries = TypeVar("Entries", bound=Mapping[str, Any])


def uploaded(store: ArtifactStore, entries: Entries) -> Entries:
    """`entries` (kind -> entry, as records or JSON objects), after putting a placeholder
    tarball in the store for each TargetModel they name."""
    for entry in entries.values():
        record = ManifestEntry.model_validate(entry)
        for target in (record.targets or {}).values():
            key = model_data_prefix(record.endpoint or "") + target
            if not store.exists(key):
                store.write_bytes(key, b"model")
    return entries
