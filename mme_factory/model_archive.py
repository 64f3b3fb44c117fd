"""Unpack a TargetModel tarball safely into SageMaker's layout.

SageMaker unpacks a TargetModel into `<models dir>/<hash>/model/` and Triton's SageMaker front
end loads that directory. A tarball comes from a bucket that many writers share, so this does
not trust tarfile's extraction (its filters have been bypassed by long link chains): the
tarball is read as a stream, each entry judged before anything is written for it (see
`archive_entries`), and files are created here, only below a fresh directory that holds
nothing but what this wrote, so no name can lead outside it. That directory takes
`destination`'s place once the whole tarball was read; on any failure it is removed.
"""

from __future__ import annotations

import bz2
import contextlib
import gzip
import lzma
import os
import shutil
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from mme_factory.archive_entries import (
    ArchiveLimits,
    CheckedTarInfo,
    EntryChecker,
    ModelArchiveError,
)

__all__ = ["ArchiveLimits", "ModelArchiveError", "check_model_repository", "extract_model"]

_CHUNK_BYTES = 1 << 20
_MAX_TRAILER_BYTES = 16 << 20
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


def extract_model(archive: Path, destination: Path, limits: ArchiveLimits) -> Path:
    """Unpack `archive` into `destination` (SageMaker's `<hash>/model/`), checked entry by entry.

    Returns the extracted directory. On any failure nothing is left at `destination`.
    """
    partial = destination.with_name(destination.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    shutil.rmtree(destination, ignore_errors=True)
    try:
        partial.mkdir(parents=True)
        _unpack(archive, partial, EntryChecker(limits))
        check_model_repository(partial)
        partial.rename(destination)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return destination


def _unpack(archive: Path, root: Path, checker: EntryChecker) -> None:
    for member, tar in _entries(archive):
        path = checker.check(member)
        if path is None:
            continue
        target = root.joinpath(*path.parts)
        try:
            if member.isdir():
                target.mkdir(mode=0o755, parents=True, exist_ok=True)
                continue
            target.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
            mode = 0o755 if member.mode & 0o100 else 0o644
            descriptor = os.open(target, _CREATE, mode)
        except OSError as error:
            raise ModelArchiveError(f"cannot unpack TargetModel tarball: {error}") from None
        with os.fdopen(descriptor, "wb") as handle:
            _copy(member, tar, handle)


def _entries(archive: Path) -> Iterator[tuple[tarfile.TarInfo, tarfile.TarFile]]:
    """The tarball's members in order, read as a stream; reading errors become ModelArchiveError."""
    with _reading(), _decompressed(archive) as stream:
        with tarfile.open(fileobj=stream, mode="r|", tarinfo=CheckedTarInfo) as tar:
            while (member := tar.next()) is not None:
                yield member, tar
        # gzip, bzip2 and xz check their checksums at the end of the stream, which tarfile
        # never reaches: read the padding after the last entry, up to a bound.
        for _ in range(_MAX_TRAILER_BYTES // _CHUNK_BYTES):
            if not stream.read(_CHUNK_BYTES):
                break


def _decompressed(archive: Path) -> BinaryIO:
    with archive.open("rb") as handle:
        magic = handle.read(6)
    if magic.startswith(b"\x1f\x8b"):
        return gzip.open(archive, "rb")  # type: ignore[return-value]
    if magic.startswith(b"BZh"):
        return bz2.open(archive, "rb")
    if magic.startswith(b"\xfd7zXZ\x00"):
        return lzma.open(archive, "rb")
    return archive.open("rb")


def _copy(member: tarfile.TarInfo, tar: tarfile.TarFile, handle: BinaryIO) -> None:
    remaining = member.size
    with _reading():
        source = tar.extractfile(member)
        assert source is not None
        while remaining:
            block = source.read(min(remaining, _CHUNK_BYTES))
            if not block:
                raise EOFError(f"{member.name!r} ends {remaining:,} bytes early")
            remaining -= len(block)
            try:
                handle.write(block)
            except OSError as error:
                raise ModelArchiveError(f"cannot unpack TargetModel tarball: {error}") from None


@contextlib.contextmanager
def _reading() -> Iterator[None]:
    """Turn any failure of tarfile or a decompressor on the tarball's bytes into 'corrupt'.

    Those libraries raise many types for bad input (ReadError, EOFError, zlib.error, LZMAError,
    OSError from gzip and bz2, ValueError, OverflowError, RecursionError on a chain of extended
    headers); each means the tarball cannot be read, so all but this module's refusals map here.
    """
    try:
        yield
    except ModelArchiveError:
        raise
    except Exception as error:
        raise ModelArchiveError(
            f"TargetModel tarball is corrupt or truncated: {type(error).__name__}: {error}"
        ) from None


def check_model_repository(directory: Path) -> None:
    """A Triton repository: model folders, each with `config.pbtxt` (several for ensembles)."""
    folders = [path for path in sorted(directory.iterdir()) if path.is_dir()]
    if not folders:
        raise ModelArchiveError(
            "TargetModel tarball holds no model directory; expected <model>/config.pbtxt "
            "and <model>/1/ at its top level"
        )
    missing = [path.name for path in folders if not (path / "config.pbtxt").is_file()]
    if missing:
        raise ModelArchiveError("TargetModel tarball lacks config.pbtxt in: " + ", ".join(missing))
