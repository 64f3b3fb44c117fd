"""Verify a TargetModel tarball and unpack it safely into SageMaker's layout.

SageMaker unpacks a TargetModel into `<models dir>/<hash>/model/` and Triton's SageMaker front
end loads that directory. A tarball comes from a bucket that many writers share, so
nothing in it may leave that directory: absolute names, `..`, links pointing outside, device
files and archives that unpack to more than a limit are all refused before anything is written.
"""

from __future__ import annotations

import shutil
import tarfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from mme_factory.errors import MmeFactoryError


class ModelArchiveError(MmeFactoryError):
    """A TargetModel tarball is corrupt, unsafe or not a Triton model repository."""


@dataclass(frozen=True)
class ArchiveLimits:
    max_extracted_bytes: int
    max_members: int


def _member_path(name: str) -> PurePosixPath:
    path = PurePosixPath(name)
    if path.is_absolute() or name.startswith(("/", "\\")) or "\\" in name:
        raise ModelArchiveError(f"tarball entry {name!r} is an absolute path")
    if ".." in path.parts:
        raise ModelArchiveError(f"tarball entry {name!r} contains '..'")
    return path


def _stays_inside(base: PurePosixPath, target: str) -> bool:
    """Whether a link target, resolved lexically from `base`, stays in the extraction root."""
    if target.startswith("/"):
        return False
    depth: list[str] = list(base.parts)
    for part in PurePosixPath(target).parts:
        if part == "..":
            if not depth:
                return False
            depth.pop()
        elif part != ".":
            depth.append(part)
    return True


def check_members(members: list[tarfile.TarInfo], limits: ArchiveLimits) -> None:
    """Refuse unsafe or oversized tarballs; raises ModelArchiveError naming the entry."""
    if len(members) > limits.max_members:
        raise ModelArchiveError(
            f"tarball holds {len(members)} entries; at most {limits.max_members}"
        )
    total = 0
    for member in members:
        path = _member_path(member.name)
        if member.isdev() or member.isfifo():
            raise ModelArchiveError(f"tarball entry {member.name!r} is a device or FIFO")
        if member.issym() and not _stays_inside(path.parent, member.linkname):
            raise ModelArchiveError(
                f"tarball entry {member.name!r} is a symlink leaving the model directory "
                f"({member.linkname!r})"
            )
        if member.islnk():
            _member_path(member.linkname)
            if not _stays_inside(PurePosixPath(), member.linkname):
                raise ModelArchiveError(
                    f"tarball entry {member.name!r} is a hard link leaving the model directory"
                )
        if not (member.isfile() or member.isdir() or member.issym() or member.islnk()):
            raise ModelArchiveError(f"tarball entry {member.name!r} has an unsupported type")
        total += max(member.size, 0)
        if total > limits.max_extracted_bytes:
            raise ModelArchiveError(
                f"tarball unpacks to more than {limits.max_extracted_bytes:,} bytes "
                "(mme_local.max_extracted_size)"
            )


def extract_model(archive: Path, destination: Path, limits: ArchiveLimits) -> Path:
    """Unpack `archive` into `destination` (SageMaker's `<hash>/model/`), checked first.

    Returns the extracted directory. On any failure nothing is left at `destination`.
    """
    partial = destination.with_name(destination.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    shutil.rmtree(destination, ignore_errors=True)
    try:
        with tarfile.open(archive, mode="r:*") as tar:
            members = tar.getmembers()
            check_members(members, limits)
            partial.mkdir(parents=True)
            # The "data" filter repeats the checks above inside the standard library.
            tar.extractall(partial, members=members, filter="data")
        check_model_repository(partial)
        partial.rename(destination)
    except (tarfile.TarError, EOFError, zlib.error, OSError) as error:
        shutil.rmtree(partial, ignore_errors=True)
        raise ModelArchiveError(f"TargetModel tarball is corrupt or truncated: {error}") from None
    except ModelArchiveError:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return destination


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
