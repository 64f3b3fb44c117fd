"""Where an endpoint's TargetModels come from: the bytes at a key, and which bytes those are.

A key can be overwritten; an endpoint must serve the object the key holds now, never bytes it
downloaded earlier. So every download is checked against the sha256 the store records for the
key, and every request asks which sha256 the key holds now. That question is a HEAD on S3 (the
sha256 rides in the object's metadata); a local store would hash the whole file, so its answer
is kept per file identity (inode, size, modification time), which every write changes.
"""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

from mme_factory.errors import StoreError
from mme_factory.model_archive import ModelArchiveError
from mme_factory.settings import Settings
from mme_factory.store import ArtifactStore, KeyMissing, LocalStore, open_store

FileIdentity = tuple[int, int, int, int]


def model_data_store(url: str, settings: Settings) -> ArtifactStore:
    """The store behind a ModelDataUrl; with a local store, `s3://bucket/k` is `<store>/k`."""
    if url.startswith("file://"):
        return LocalStore(Path(url[len("file://") :]))
    if url.startswith("s3://") and settings.is_local_store:
        _, _, prefix = url[len("s3://") :].partition("/")
        return LocalStore(Path(settings.store) / prefix)
    return open_store(url, settings)


class ModelSource:
    def __init__(self, store: ArtifactStore, max_bytes: int) -> None:
        self.store, self.max_bytes = store, max_bytes
        self._known: dict[str, tuple[FileIdentity, str]] = {}
        self._lock = threading.Lock()

    def download(self, key: str, archive: Path) -> str:
        """Write the object at `key` to `archive`; return its sha256, checked with the store's."""
        size = self.store.size(key)
        if size > self.max_bytes:
            raise ModelArchiveError(
                f"TargetModel tarball is {size:,} bytes; at most {self.max_bytes:,} "
                "(mme_local.max_extracted_size)"
            )
        recorded = self.current_sha256(key)
        data = self.store.read_bytes(key)
        actual = hashlib.sha256(data).hexdigest()
        if actual != recorded:
            raise StoreError(
                f"{self.store.uri(key)} changed or was damaged while downloading: its bytes "
                f"have sha256 {actual}, the store records {recorded}; retry"
            )
        archive.parent.mkdir(parents=True, exist_ok=True)
        archive.write_bytes(data)
        return actual

    def known_sha256(self, key: str) -> str | None:
        """The sha256 at `key` when a stat tells it (a local file unchanged since it was hashed).

        None when the answer needs the store's I/O: call `current_sha256` in a thread then.
        """
        if not isinstance(self.store, LocalStore):
            return None
        return self._known_for(key, self._identity(key))

    def current_sha256(self, key: str) -> str:
        """The sha256 of the object the store holds at `key` now; StoreError if there is none."""
        if not isinstance(self.store, LocalStore):
            return self.store.stored_sha256(key)
        identity = self._identity(key)
        known = self._known_for(key, identity)
        if known is not None:
            return known
        digest = self.store.stored_sha256(key)
        # Kept under the identity seen before hashing: a write in between changes the identity,
        # so the next question hashes again instead of trusting a digest of mixed bytes.
        with self._lock:
            self._known[key] = (identity, digest)
        return digest

    def _known_for(self, key: str, identity: FileIdentity) -> str | None:
        with self._lock:
            known = self._known.get(key)
        return known[1] if known is not None and known[0] == identity else None

    def _identity(self, key: str) -> FileIdentity:
        try:
            stat = os.stat(self.store.uri(key))
        except FileNotFoundError:
            raise KeyMissing(f"{self.store.uri(key)} does not exist") from None
        except OSError as error:
            raise StoreError(f"cannot inspect {self.store.uri(key)}: {error}") from None
        return (stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns)
