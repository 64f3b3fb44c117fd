"""The artifact store: an S3 bucket, or a local directory laid out with the bucket's exact keys."""

from __future__ import annotations

from pathlib import Path

from mme_factory.aws_clients import s3_client
from mme_factory.errors import StoreError
from mme_factory.local_store import LocalStore
from mme_factory.s3_store import S3Store
from mme_factory.settings import Settings
from mme_factory.store_protocol import (
    ArtifactStore,
    KeyMissing,
    StoreUnavailable,
    VersionedObject,
    checked_key,
    file_sha256,
)

__all__ = [
    "ArtifactStore",
    "KeyMissing",
    "LocalStore",
    "S3Store",
    "StoreUnavailable",
    "VersionedObject",
    "checked_key",
    "file_sha256",
    "open_store",
]


def open_store(uri: str, settings: Settings) -> ArtifactStore:
    """A store rooted at `uri`: `s3://bucket[/prefix]` or a local directory."""
    if uri.startswith("s3://"):
        bucket, _, prefix = uri[len("s3://") :].partition("/")
        if not bucket:
            raise StoreError(f"invalid S3 URI {uri!r}: no bucket")
        return S3Store(s3_client(settings), bucket, prefix)
    if "://" in uri:
        raise StoreError(f"unsupported location {uri!r}: use s3://bucket/prefix or a local path")
    return LocalStore(Path(uri))
