"""The local artifact store: a directory laid out with the bucket's exact keys.

Every write goes to a uniquely named hidden file that is then renamed or linked into place, so a
reader never sees half an object and concurrent writers never share a temporary file. The
conditional operations hold an advisory `flock` on a hidden file beside the key while they
compare and change it: the kernel releases it if its holder dies, so a crash never leaves the
key blocked.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from mme_factory.errors import StoreError
from mme_factory.store_protocol import (
    KeyMissing,
    StoreUnavailable,
    VersionedObject,
    checked_key,
    file_sha256,
)

MUTEX_WAIT_S = 10.0  # a conditional change holds the mutex for a stat and a rename


def _tag(stat: os.stat_result) -> str:
    return f"{stat.st_ino}-{stat.st_mtime_ns}-{stat.st_size}"


class LocalStore:
    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    def _path(self, key: str) -> Path:
        return self.root / checked_key(key)

    def uri(self, key: str = "") -> str:
        return str(self.root / key) if key else str(self.root)

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def size(self, key: str) -> int:
        try:
            return self._path(key).stat().st_size
        except FileNotFoundError:
            raise KeyMissing(f"{self.uri(key)} does not exist") from None

    def read_bytes(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            raise KeyMissing(f"{self.uri(key)} does not exist") from None
        except OSError as error:
            raise StoreError(f"cannot read {self.uri(key)}: {error}") from None

    def _staged(self, key: str, write: Callable[[Path], object]) -> Path:
        """A hidden file beside the key holding the new bytes, for a rename or link."""
        target = self._path(key)
        partial = target.with_name(f".{target.name}.{uuid.uuid4().hex}.partial")
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            write(partial)
        except OSError as error:
            partial.unlink(missing_ok=True)
            raise StoreError(f"cannot write {self.uri(key)}: {error}") from None
        return partial

    def _move_into_place(self, key: str, partial: Path) -> None:
        try:
            partial.replace(self._path(key))
        except OSError as error:
            partial.unlink(missing_ok=True)
            raise StoreError(f"cannot write {self.uri(key)}: {error}") from None

    def write_bytes(self, key: str, data: bytes) -> None:
        self._move_into_place(key, self._staged(key, lambda p: p.write_bytes(data)))

    def list_keys(self, prefix: str = "") -> Iterator[str]:
        for path in sorted(self.root.rglob("*")):
            key = path.relative_to(self.root).as_posix()
            if path.is_file() and key.startswith(prefix) and not path.name.startswith("."):
                yield key

    def put_file(self, key: str, path: Path, sha256: str) -> None:
        self._move_into_place(key, self._staged(key, lambda p: shutil.copyfile(path, p)))

    def stored_sha256(self, key: str) -> str:
        if not self.exists(key):
            raise KeyMissing(f"{self.uri(key)} does not exist")
        return file_sha256(self._path(key))

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def clock(self) -> float:
        """The file system's time now: the modification time of a file written for it."""
        probe = self.root / f".clock.{uuid.uuid4().hex}"
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            probe.touch()
            return probe.stat().st_mtime
        except OSError as error:
            raise StoreError(f"cannot read the time of {self.uri()}: {error}") from None
        finally:
            probe.unlink(missing_ok=True)

    def read_versioned(self, key: str) -> VersionedObject | None:
        try:
            with self._path(key).open("rb") as handle:
                stat = os.fstat(handle.fileno())
                return VersionedObject(handle.read(), _tag(stat), stat.st_mtime)
        except FileNotFoundError:
            return None
        except OSError as error:
            raise StoreError(f"cannot read {self.uri(key)}: {error}") from None

    def create_exclusive(self, key: str, data: bytes) -> str | None:
        # A hard link appears with all its bytes or not at all: no reader sees an empty lock.
        partial = self._staged(key, lambda p: p.write_bytes(data))
        try:
            os.link(partial, self._path(key))
            return _tag(partial.stat())
        except FileExistsError:
            return None
        except OSError as error:
            raise StoreError(f"cannot create {self.uri(key)}: {error}") from None
        finally:
            partial.unlink(missing_ok=True)

    def replace_if(self, key: str, data: bytes, tag: str) -> str | None:
        partial = self._staged(key, lambda p: p.write_bytes(data))
        try:
            with self._mutex(key):
                if self._current_tag(key) != tag:
                    return None
                new_tag = _tag(partial.stat())
                self._move_into_place(key, partial)
                return new_tag
        finally:
            partial.unlink(missing_ok=True)

    def delete_if(self, key: str, tag: str) -> bool:
        with self._mutex(key):
            if self._current_tag(key) != tag:
                return False
            self._path(key).unlink()
            return True

    def _current_tag(self, key: str) -> str | None:
        try:
            return _tag(self._path(key).stat())
        except FileNotFoundError:
            return None

    @contextmanager
    def _mutex(self, key: str) -> Iterator[None]:
        path = self._path(key)
        mutex = path.with_name(f".{path.name}.mutex")
        deadline = time.monotonic() + MUTEX_WAIT_S
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            handle = mutex.open("a")
        except OSError as error:
            raise StoreError(
                f"cannot lock {self.uri(key)} for a conditional change: {error}"
            ) from None
        with handle:
            while True:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise StoreUnavailable(
                            f"{self.uri(key)} stayed busy for {MUTEX_WAIT_S:.0f} s"
                        ) from None
                    time.sleep(0.01)
            yield
