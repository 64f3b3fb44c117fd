"""Hostile and broken TargetModel tarballs: refused as unsafe or corrupt, nothing written."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import os
import tarfile
import tracemalloc
from pathlib import Path

import pytest

from mme_factory.model_archive import ArchiveLimits, ModelArchiveError, extract_model
from test_support.mme_local_models import model_files, tarball

LIMITS = ArchiveLimits(max_extracted_bytes=1024 * 1024, max_members=100)


def _model_tar(add_entries, compress=gzip.compress) -> bytes:  # type: ignore[no-untyped-def]
    """A valid model repository followed by the entries `add_entries(tar)` writes."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for name, data in model_files().items():
            _add(tar, name, data)
        add_entries(tar)
    return compress(buffer.getvalue())


def _add(tar: tarfile.TarFile, name: str, data: bytes = b"", **fields: object) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    for key, value in fields.items():
        setattr(info, key, value)
    tar.addfile(info, io.BytesIO(data))


def _extract(tmp_path: Path, data: bytes) -> Path:
    archive = tmp_path / "work" / "model.tar.gz"
    archive.parent.mkdir(parents=True, exist_ok=True)
    archive.write_bytes(data)
    return extract_model(archive, tmp_path / "work" / "models" / "abc" / "model", LIMITS)


def _written(tmp_path: Path) -> list[str]:
    """Everything under tmp_path but the tarball itself."""
    return sorted(
        str(path.relative_to(tmp_path))
        for path in tmp_path.rglob("*")
        if path.name != "model.tar.gz" and not path.is_dir()
    )


def test_long_path_symlink_chain_is_refused_and_writes_nothing_outside(tmp_path):
    # Directory names of 247 characters, each reached through a one-letter symlink, make the
    # resolved path longer than PATH_MAX, where os.path.realpath stops resolving; the last
    # link then points out of the extraction directory while looking inside it.
    def chain(tar: tarfile.TarFile) -> None:
        component, steps, path = "d" * 247, "abcdefghijklmnop", ""
        for step in steps:
            _add(tar, os.path.join(path, component), type=tarfile.DIRTYPE)
            _add(tar, os.path.join(path, step), type=tarfile.SYMTYPE, linkname=component)
            path = os.path.join(path, component)
        long_link = os.path.join(*steps, "l" * 254)
        _add(tar, long_link, type=tarfile.SYMTYPE, linkname="../" * len(steps))
        _add(tar, "escape", type=tarfile.SYMTYPE, linkname=long_link + "/../..")
        _add(tar, "escape/pwned", b"outside")

    with pytest.raises(ModelArchiveError, match=r"unsafe"):
        _extract(tmp_path, _model_tar(chain))
    assert not list(tmp_path.rglob("pwned"))
    assert _written(tmp_path) == []


def test_dot_and_dotdot_symlink_chain_is_refused_as_unsafe(tmp_path):
    def chain(tar: tarfile.TarFile) -> None:
        _add(tar, "x", type=tarfile.SYMTYPE, linkname=".")
        _add(tar, "x/y", type=tarfile.SYMTYPE, linkname="..")
        _add(tar, "x/y/pwned", b"outside")

    with pytest.raises(ModelArchiveError, match=r"unsafe.*symbolic link"):
        _extract(tmp_path, _model_tar(chain))
    assert _written(tmp_path) == []


def _many_headers(count: int) -> bytes:
    """A .tar.gz of `count` empty files, written header by header (tarfile takes seconds)."""
    header = bytearray(tarfile.TarInfo("d/000000").tobuf(tarfile.USTAR_FORMAT))
    header[148:156] = b" " * 8
    base = sum(header) - sum(b"000000")
    out = bytearray()
    for index in range(count):
        digits = b"%06d" % index
        header[2:8] = digits
        header[148:156] = b"%06o\0 " % (base + sum(digits))
        out += header
    return gzip.compress(bytes(out) + bytes(1024), compresslevel=1)


def test_tarball_of_300000_headers_is_refused_after_the_member_limit(tmp_path, monkeypatch):
    data = _many_headers(300_000)
    headers_read = 0
    frombuf = tarfile.TarInfo.frombuf.__func__  # type: ignore[attr-defined]

    def counted(cls, buf, encoding, errors):  # type: ignore[no-untyped-def]
        nonlocal headers_read
        headers_read += 1
        return frombuf(cls, buf, encoding, errors)

    monkeypatch.setattr(tarfile.TarInfo, "frombuf", classmethod(counted))
    tracemalloc.start()
    try:
        with pytest.raises(ModelArchiveError, match="more than 100 entries"):
            _extract(tmp_path, data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert headers_read == LIMITS.max_members + 1
    assert peak < 8 * 1024 * 1024
    assert _written(tmp_path) == []


def test_extended_header_claiming_gigabytes_is_refused_before_it_is_read(tmp_path):
    header = bytearray(tarfile.TarInfo("././@PaxHeader").tobuf(tarfile.USTAR_FORMAT))
    header[156:157] = tarfile.XHDTYPE
    header[124:136] = b"%011o\0" % (4 * 1024**3)
    header[148:156] = b" " * 8
    header[148:156] = b"%06o\0 " % sum(header)
    with pytest.raises(ModelArchiveError, match=r"unsafe.*extended header of 4,294,967,296"):
        _extract(tmp_path, gzip.compress(bytes(header) + bytes(4096)))


def test_chain_of_long_name_headers_is_refused_not_a_crash(tmp_path):
    def chain(tar: tarfile.TarFile) -> None:
        for _ in range(3000):
            info = tarfile.TarInfo("././@LongLink")
            info.type, info.size = tarfile.GNUTYPE_LONGNAME, 4
            tar.fileobj.write(info.tobuf(tarfile.USTAR_FORMAT) + b"abc\0".ljust(512, b"\0"))  # type: ignore[union-attr]
            tar.offset += 1024

    with pytest.raises(ModelArchiveError, match="corrupt"):
        _extract(tmp_path, _model_tar(chain))
    assert _written(tmp_path) == []


def test_sparse_file_is_refused_as_unsafe(tmp_path):
    def sparse(tar: tarfile.TarFile) -> None:
        _add(tar, "doubler/1/holes.bin", type=tarfile.GNUTYPE_SPARSE)

    with pytest.raises(ModelArchiveError, match=r"unsafe.*sparse"):
        _extract(tmp_path, _model_tar(sparse))


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("doubler/" + "n" * 256, "component longer than 255"),
        ("doubler/" + "/".join(["n" * 200] * 6), "longer than 1024"),
        ("doubler//model.py", "not a normalised path"),
        ("doubler/./model.py", "not a normalised path"),
        ("doubler/1/model.py", "appears twice"),
        ("doubler/config.pbtxt/inner", "which is a file"),
        ("doubler/1/bad\nname", "control character"),
    ],
)
def test_badly_named_entry_is_refused_as_unsafe(tmp_path, name, why):
    with pytest.raises(ModelArchiveError, match=rf"unsafe.*{why}"):
        _extract(tmp_path, _model_tar(lambda tar: _add(tar, name, b"x")))
    assert _written(tmp_path) == []


def test_tarball_made_with_tar_c_dot_is_accepted(tmp_path):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        _add(tar, ".", type=tarfile.DIRTYPE)
        for name, data in model_files().items():
            _add(tar, f"./{name}", data)
    destination = _extract(tmp_path, buffer.getvalue())
    assert (destination / "doubler" / "1" / "model.py").is_file()


@pytest.mark.parametrize("compress", [lzma.compress, bz2.compress, gzip.compress])
def test_corrupt_compressed_tarball_is_a_model_archive_error(tmp_path, compress):
    data = bytearray(compress(tarfile_bytes := _plain_model_tar()))
    assert len(tarfile_bytes) > 2048
    middle = len(data) // 2
    data[middle : middle + 16] = bytes(16)
    with pytest.raises(ModelArchiveError, match="corrupt or truncated"):
        _extract(tmp_path, bytes(data))
    assert _written(tmp_path) == []


def _plain_model_tar() -> bytes:
    weights = {"doubler/1/weights.bin": os.urandom(64 * 1024)}
    return gzip.decompress(tarball({**model_files(), **weights}))


def test_member_with_an_absurd_mtime_is_extracted_without_its_time(tmp_path):
    def late(tar: tarfile.TarFile) -> None:
        _add(tar, "doubler/1/late.txt", b"x", mtime=8**11 * 7)

    def absurd(tar: tarfile.TarFile) -> None:
        _add(tar, "doubler/1/absurd.txt", b"x", mtime=2**70)

    destination = _extract(tmp_path, _model_tar(late))
    assert (destination / "doubler" / "1" / "late.txt").read_bytes() == b"x"
    destination = _extract(tmp_path, _model_tar(absurd))
    assert (destination / "doubler" / "1" / "absurd.txt").read_bytes() == b"x"


def test_tarball_cut_inside_a_file_is_refused_and_leaves_nothing(tmp_path):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in model_files().items():
            _add(tar, name, data)
        _add(tar, "doubler/1/weights.bin", os.urandom(200_000))
    data = gzip.compress(buffer.getvalue()[:-150_000])
    with pytest.raises(ModelArchiveError, match="corrupt or truncated"):
        _extract(tmp_path, data)
    assert _written(tmp_path) == []


def _plain_tar_with_weights() -> tuple[bytes, int]:
    """A plain tar of the model and a weights file; also the offset of the weights' header."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data in model_files().items():
            _add(tar, name, data)
        header_at = tar.offset
        _add(tar, "doubler/1/weights.bin", b"w" * 1000)
    return buffer.getvalue(), header_at


def test_header_with_a_bad_checksum_after_the_first_is_corrupt_not_the_end(tmp_path):
    data, header_at = _plain_tar_with_weights()
    damaged = bytearray(data)
    damaged[header_at + 10] ^= 0xFF
    with pytest.raises(ModelArchiveError, match="header is invalid"):
        _extract(tmp_path, gzip.compress(bytes(damaged)))
    assert _written(tmp_path) == []


def test_tarball_cut_between_two_entries_is_truncated(tmp_path):
    data, header_at = _plain_tar_with_weights()
    with pytest.raises(ModelArchiveError, match="end-of-archive marker"):
        _extract(tmp_path, data[:header_at])
    assert _written(tmp_path) == []
