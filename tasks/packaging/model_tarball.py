"""Reproducible `model.tar.gz`: the same files give the same bytes.

Entries are sorted, owners and times are zeroed, modes are normalised and the gzip header
carries no name or time, so the sha256 of a tarball identifies its content.
"""

from __future__ import annotations

import gzip
import io
import tarfile
from collections.abc import Iterable, Mapping
from pathlib import Path, PurePosixPath

from mme_factory.model_archive import ArchiveLimits, extract_model
from mme_factory.settings import MmeLocalSettings
from mme_factory.store import file_sha256

COMPRESS_LEVEL = 6

TarballEntries = Mapping[str, Path | bytes]  # archive path -> source file or content


def write_tarball(
    entries: TarballEntries, destination: Path, empty_directories: Iterable[str] = ()
) -> str:
    """Write `entries` (their directories implied) to `destination`; return its sha256."""
    paths = [*entries, *(f"{name}/x" for name in empty_directories)]
    directories = sorted(
        {str(parent) for name in paths for parent in PurePosixPath(name).parents} - {"."}
    )
    destination.parent.mkdir(parents=True, exist_ok=True)
    partial = destination.with_name(f".{destination.name}.partial")
    with (
        partial.open("wb") as raw,
        gzip.GzipFile(
            filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=COMPRESS_LEVEL
        ) as zipped,
        tarfile.open(fileobj=zipped, mode="w", format=tarfile.PAX_FORMAT) as tar,
    ):
        for name in directories:
            tar.addfile(_info(name, tarfile.DIRTYPE, 0o755, 0))
        for name in sorted(entries):
            _add_file(tar, name, entries[name])
    partial.replace(destination)
    return file_sha256(destination)


def _info(name: str, kind: bytes, mode: int, size: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.size = kind, mode, size
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def _add_file(tar: tarfile.TarFile, name: str, source: Path | bytes) -> None:
    if isinstance(source, bytes):
        tar.addfile(_info(name, tarfile.REGTYPE, 0o644, len(source)), io.BytesIO(source))
        return
    with source.open("rb") as data:  # follows symlinks: the archive holds regular files only
        tar.addfile(_info(name, tarfile.REGTYPE, 0o644, source.stat().st_size), data)


def tarball_names(path: Path) -> list[str]:
    with tarfile.open(path, "r:gz") as tar:
        return tar.getnames()


def extract_tarball(path: Path, destination: Path) -> Path:
    """Unpack as an endpoint does (`extract_model`), under mme_local's default limits."""
    return extract_model(path, destination, ArchiveLimits.from_settings(MmeLocalSettings()))
