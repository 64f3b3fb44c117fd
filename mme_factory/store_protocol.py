"""What every artifact store offers: keys, whole-object reads and writes, conditional changes.

The conditional operations compare an object's version tag (S3's ETag; for a local file its
inode, modification time and size), so that of two writers that saw the same version at most
one changes it: the customer lock is built on them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Protocol

from mme_factory.errors import StoreError


class KeyMissing(StoreError):
    """The key holds no object."""


class StoreUnavailable(StoreError):
    """The store could not be reached or answered with a transient error: try again."""


@dataclass(frozen=True)
class VersionedObject:
    data: bytes
    tag: str  # changes with every write of the key
    modified: float  # when the key was last written, seconds since the epoch, by the store's clock


class ArtifactStore(Protocol):
    """Keys are relative POSIX paths such as `registry/acme.json`."""

    def uri(self, key: str = "") -> str: ...
    def exists(self, key: str) -> bool: ...
    def size(self, key: str) -> int: ...
    def read_bytes(self, key: str) -> bytes: ...
    def write_bytes(self, key: str, data: bytes) -> None: ...
    def list_keys(self, prefix: str = "") -> Iterator[str]: ...
    def put_file(self, key: str, path: Path, sha256: str) -> None: ...
    def stored_sha256(self, key: str) -> str: ...
    def delete(self, key: str) -> None: ...

    def clock(self) -> float:
        """The store's own time now, seconds since the epoch: what `modified` is measured by."""
        ...

    def read_versioned(self, key: str) -> VersionedObject | None:
        """The object and its version tag; None when the key holds nothing."""
        ...

    def create_exclusive(self, key: str, data: bytes) -> str | None:
        """Create the object with all its bytes at once; its tag, or None if the key exists."""
        ...

    def replace_if(self, key: str, data: bytes, tag: str) -> str | None:
        """Replace the object if it is still version `tag`; the new tag, or None if it is not."""
        ...

    def delete_if(self, key: str, tag: str) -> bool:
        """Delete the object if it is still version `tag`; False if it is not (or is gone)."""
        ...


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def checked_key(key: str) -> str:
    """Refuse keys that could leave the store's root."""
    path = PurePosixPath(key)
    if not key or path.is_absolute() or ".." in path.parts or "\\" in key or "\x00" in key:
        raise StoreError(f"invalid store key {key!r}: must be a relative path without '..'")
    return str(path)
