"""TargetModel checks and safe extraction of TargetModel tarballs (no servers)."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from mme_factory.model_archive import ArchiveLimits, ModelArchiveError, extract_model
from mme_local.runtime.target_model import InvalidTargetModel, TargetModel
from test_support.mme_local_models import model_files, model_tarball, tarball

LIMITS = ArchiveLimits(max_extracted_bytes=1024 * 1024, max_members=100)


def _archive(tmp_path: Path, data: bytes) -> Path:
    path = tmp_path / "model.tar.gz"
    path.write_bytes(data)
    return path


def _tar_with(tmp_path: Path, add: object) -> Path:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for path, data in model_files().items():
            info = tarfile.TarInfo(path)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        add(tar)  # type: ignore[operator]
    return _archive(tmp_path, buffer.getvalue())


def _extract(tmp_path: Path, archive: Path) -> Path:
    return extract_model(archive, tmp_path / "models" / "abc" / "model", LIMITS)


def test_target_model_keys_from_the_pipeline_are_accepted():
    target = TargetModel.parse("acme/embedding-query/v3.tar.gz")
    assert target.key == "acme/embedding-query/v3.tar.gz"
    assert len(target.triton_name) == 32 and "/" not in target.triton_name


def test_triton_name_is_stable_and_distinct_per_target_model():
    first = TargetModel.parse("acme/classifier/v1.tar.gz")
    assert first.triton_name == TargetModel.parse("acme/classifier/v1.tar.gz").triton_name
    assert first.triton_name != TargetModel.parse("acme/classifier/v2.tar.gz").triton_name


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (None, "required"),
        ("", "required"),
        ("../other/v1.tar.gz", r"'\.\.'"),
        ("acme/../../etc/passwd", r"'\.\.'"),
        ("/etc/passwd", "absolute"),
        ("acme//v1.tar.gz", "empty"),
        ("acme/v1 .tar.gz", "outside"),
        ("acme\\v1.tar.gz", "outside"),
        ("acme/v1.tar.gz\x00", "outside"),
        ("acme/%2e%2e/v1.tar.gz", "outside"),
        ("acmé/v1.tar.gz", "outside"),
        ("a" * 1025, "at most 1024"),
    ],
)
def test_malformed_target_model_is_refused(value, reason):
    with pytest.raises(InvalidTargetModel, match=reason):
        TargetModel.parse(value)


def test_valid_tarball_is_extracted_into_sagemaker_layout(tmp_path):
    destination = _extract(tmp_path, _archive(tmp_path, model_tarball()))
    assert destination == tmp_path / "models" / "abc" / "model"
    assert (destination / "doubler" / "config.pbtxt").is_file()
    assert (destination / "doubler" / "1" / "model.py").is_file()


def test_tarball_with_absolute_path_is_refused(tmp_path):
    archive = _archive(tmp_path, tarball({**model_files(), "/tmp/evil.py": b"x"}))
    with pytest.raises(ModelArchiveError, match=r"unsafe.*absolute"):
        _extract(tmp_path, archive)
    assert not (tmp_path / "models" / "abc").exists() or not any(
        (tmp_path / "models" / "abc").iterdir()
    )


def test_tarball_with_dotdot_entry_is_refused(tmp_path):
    archive = _archive(tmp_path, tarball({**model_files(), "doubler/../../evil.py": b"x"}))
    with pytest.raises(ModelArchiveError, match=r"unsafe.*'\.\.'"):
        _extract(tmp_path, archive)
    assert not (tmp_path / "models" / "evil.py").exists()


@pytest.mark.parametrize(
    ("kind", "linkname", "what"),
    [
        (tarfile.SYMTYPE, "../../../../etc/passwd", "symbolic link"),
        (tarfile.SYMTYPE, "/etc/passwd", "symbolic link"),
        (tarfile.SYMTYPE, "1", "symbolic link"),
        (tarfile.LNKTYPE, "../etc/shadow", "hard link"),
        (tarfile.LNKTYPE, "/etc/shadow", "hard link"),
        (tarfile.LNKTYPE, "doubler/config.pbtxt", "hard link"),
    ],
)
def test_tarball_with_any_link_is_refused_as_unsafe(tmp_path, kind, linkname, what):
    def add(tar: tarfile.TarFile) -> None:
        link = tarfile.TarInfo("doubler/2")
        link.type, link.linkname = kind, linkname
        tar.addfile(link)

    with pytest.raises(ModelArchiveError, match=rf"unsafe.*{what}"):
        _extract(tmp_path, _tar_with(tmp_path, add))
    assert not (tmp_path / "models" / "abc").exists() or not any(
        (tmp_path / "models" / "abc").iterdir()
    )


@pytest.mark.parametrize("kind", [tarfile.CHRTYPE, tarfile.BLKTYPE, tarfile.FIFOTYPE])
def test_tarball_with_device_file_is_refused(tmp_path, kind):
    def add(tar: tarfile.TarFile) -> None:
        device = tarfile.TarInfo("doubler/1/null")
        device.type, device.devmajor, device.devminor = kind, 1, 3
        tar.addfile(device)

    with pytest.raises(ModelArchiveError, match=r"unsafe.*device or FIFO"):
        _extract(tmp_path, _tar_with(tmp_path, add))


def test_tarball_over_the_size_limit_is_refused(tmp_path):
    big = {**model_files(), "doubler/1/weights.bin": b"\0" * (LIMITS.max_extracted_bytes + 1)}
    with pytest.raises(ModelArchiveError, match="more than"):
        _extract(tmp_path, _archive(tmp_path, tarball(big)))


def test_tarball_with_too_many_entries_is_refused(tmp_path):
    many = {**model_files(), **{f"doubler/1/f{i}": b"" for i in range(LIMITS.max_members)}}
    with pytest.raises(ModelArchiveError, match="entries"):
        _extract(tmp_path, _archive(tmp_path, tarball(many)))


def test_corrupt_tarball_is_refused(tmp_path):
    with pytest.raises(ModelArchiveError, match="corrupt or truncated"):
        _extract(tmp_path, _archive(tmp_path, b"this is not a tarball at all" * 10))


def test_truncated_tarball_is_refused(tmp_path):
    data = tarball({**model_files(), "doubler/1/weights.bin": bytes(range(256)) * 400})
    with pytest.raises(ModelArchiveError, match="corrupt or truncated"):
        _extract(tmp_path, _archive(tmp_path, data[: len(data) // 2]))
    assert not (tmp_path / "models" / "abc" / "model.partial").exists()


def test_tarball_without_config_pbtxt_is_refused(tmp_path):
    archive = _archive(tmp_path, tarball(model_files(with_config=False)))
    with pytest.raises(ModelArchiveError, match=r"lacks config\.pbtxt in: doubler"):
        _extract(tmp_path, archive)


def test_tarball_without_model_directory_is_refused(tmp_path):
    archive = _archive(tmp_path, tarball({"README.md": b"hello"}))
    with pytest.raises(ModelArchiveError, match="no model directory"):
        _extract(tmp_path, archive)
