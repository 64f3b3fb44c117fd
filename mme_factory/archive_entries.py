"""Which tarball entries a Triton model repository may hold, judged one header at a time.

A model repository never needs links, devices or sparse files, so an entry is a regular file or
a directory with a short, normalised, relative name, or the tarball is refused. Entries are
judged as tarfile reads their headers, with a running count and size total, so a tarball of a
million headers or of one huge one is refused after reading at most the limit, and nothing is
written for an entry before it has been judged.
"""

from __future__ import annotations

import tarfile
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from mme_factory.errors import MmeFactoryError
from mme_factory.settings import MmeLocalSettings

MAX_NAME_BYTES = 255  # one path component: NAME_MAX on Linux
MAX_PATH_BYTES = 1024  # a whole entry name
# A pax or GNU long-name header's own data; tarfile reads it into memory in one piece.
MAX_HEADER_BYTES = 64 * 1024
_EXTENDED_HEADERS = (
    tarfile.GNUTYPE_LONGNAME,
    tarfile.GNUTYPE_LONGLINK,
    tarfile.XHDTYPE,
    tarfile.XGLTYPE,
    tarfile.SOLARIS_XHDTYPE,
)
_FILE_TYPES = (tarfile.REGTYPE, tarfile.AREGTYPE)


class ModelArchiveError(MmeFactoryError):
    """A TargetModel tarball is corrupt, unsafe or not a Triton model repository."""


def unsafe(name: str, why: str) -> ModelArchiveError:
    return ModelArchiveError(
        f"unsafe TargetModel tarball: entry {name[:200]!r} {why}; a model repository holds "
        "only regular files and directories with relative names"
    )


@dataclass(frozen=True)
class ArchiveLimits:
    max_extracted_bytes: int
    max_members: int

    @classmethod
    def from_settings(cls, local: MmeLocalSettings) -> ArchiveLimits:
        """The limits an endpoint applies to a TargetModel tarball."""
        return cls(int(local.max_extracted_size), local.max_tarball_members)


class CheckedTarInfo(tarfile.TarInfo):
    """tarfile's header reader, refusing what would make tarfile itself read without bound.

    It also refuses what tarfile takes for the end of the archive after the first entry: a
    header with a bad checksum or a stream that stops without the end-of-archive blocks would
    otherwise end the listing quietly and leave a model with files missing.
    """

    @classmethod
    def frombuf(cls, buf: bytes, encoding: str, errors: str) -> Any:
        try:
            return super().frombuf(buf, encoding, errors)
        except (tarfile.EmptyHeaderError, tarfile.TruncatedHeaderError):
            raise ModelArchiveError(
                "TargetModel tarball is corrupt or truncated: it ends without the "
                "end-of-archive marker"
            ) from None
        except tarfile.InvalidHeaderError as error:
            raise ModelArchiveError(
                f"TargetModel tarball is corrupt or truncated: a header is invalid ({error})"
            ) from None

    def _proc_member(self, tar: Any) -> Any:
        if self.type == tarfile.GNUTYPE_SPARSE:
            raise unsafe(self.name, "is a sparse file")
        if self.type in _EXTENDED_HEADERS and not 0 <= self.size <= MAX_HEADER_BYTES:
            raise unsafe(self.name, f"has an extended header of {self.size:,} bytes")
        return super()._proc_member(tar)

    def _proc_gnusparse_10(self, next: Any, pax_headers: Any, tar: Any) -> None:
        # This format's map follows the header with a length of its own choosing.
        raise unsafe(next.name, "is a sparse file")


@dataclass
class EntryChecker:
    """Judges each entry in archive order; remembers names to refuse duplicates and clashes."""

    limits: ArchiveLimits
    entries: int = 0
    total_bytes: int = 0
    _kinds: dict[str, bool] = field(default_factory=dict)  # name -> is a directory

    def check(self, member: tarfile.TarInfo) -> PurePosixPath | None:
        """The entry's relative path; None for the root directory itself (`.`)."""
        self.entries += 1
        if self.entries > self.limits.max_members:
            raise ModelArchiveError(
                f"TargetModel tarball holds more than {self.limits.max_members:,} entries "
                "(mme_local.max_tarball_members)"
            )
        is_dir = _kind(member)
        path = _relative_path(member.name)
        if path is None:
            if not is_dir:
                raise unsafe(member.name, "names the extraction directory itself")
            return None
        self.total_bytes += member.size if not is_dir else 0
        if self.total_bytes > self.limits.max_extracted_bytes:
            raise ModelArchiveError(
                f"TargetModel tarball unpacks to more than {self.limits.max_extracted_bytes:,} "
                "bytes (mme_local.max_extracted_size)"
            )
        name = str(path)
        if name in self._kinds:
            raise unsafe(member.name, "appears twice")
        for parent in path.parents:
            if self._kinds.get(str(parent)) is False:
                raise unsafe(member.name, f"lies under {str(parent)!r}, which is a file")
        self._kinds[name] = is_dir
        return path


def _kind(member: tarfile.TarInfo) -> bool:
    """Whether the entry is a directory; refuses every type but files and directories."""
    if member.isdir():
        return True
    if member.type in _FILE_TYPES and not member.issparse():
        if member.size < 0:
            raise ModelArchiveError(f"TargetModel tarball is corrupt: {member.name!r} has size < 0")
        return False
    if member.issym():
        raise unsafe(member.name, f"is a symbolic link (to {member.linkname[:200]!r})")
    if member.islnk():
        raise unsafe(member.name, f"is a hard link (to {member.linkname[:200]!r})")
    if member.isdev() or member.isfifo():
        raise unsafe(member.name, "is a device or FIFO")
    if member.issparse():
        raise unsafe(member.name, "is a sparse file")
    raise unsafe(member.name, f"has the unsupported type {member.type!r}")


def _relative_path(name: str) -> PurePosixPath | None:
    """`name` as a normalised relative path; a leading `./` (`tar -C dir .`) is allowed."""
    if name.startswith("/"):
        raise unsafe(name, "is an absolute path")
    if "\\" in name or any(ord(char) < 0x20 or ord(char) == 0x7F for char in name):
        raise unsafe(name, "holds a backslash or a control character")
    if len(name.encode("utf-8", "surrogateescape")) > MAX_PATH_BYTES:
        raise unsafe(name, f"is longer than {MAX_PATH_BYTES} bytes")
    parts = name.split("/")
    while len(parts) > 1 and parts[0] == ".":
        parts.pop(0)
    if parts in (["."], [""]):
        return None
    for part in parts:
        if part == "..":
            raise unsafe(name, "contains '..'")
        if part in ("", "."):
            raise unsafe(name, "is not a normalised path (an empty or '.' component)")
        if len(part.encode("utf-8", "surrogateescape")) > MAX_NAME_BYTES:
            raise unsafe(name, f"has a component longer than {MAX_NAME_BYTES} bytes")
    return PurePosixPath(*parts)
