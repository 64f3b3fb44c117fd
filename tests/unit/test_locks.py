"""The locks: every package pinned, each lock satisfying its inputs, the serving image's lock."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from mme_factory import serving_image
from mme_factory.serving_image import image_digest, read_requirements, serving_packages
from test_support.paths import REPO

ROOT = REPO
LOCKS = ROOT / "locks"
LOCK_FILES = ["pipeline.txt", "triton-server.txt", "serving-models.txt"]


def pins(lock: Path) -> dict[str, Version]:
    """name -> version of every `name==version` line; anything else there fails the test."""
    found = {}
    for package in read_requirements(lock):
        requirement = Requirement(package.requirement)
        (specifier,) = requirement.specifier
        assert specifier.operator == "==", f"{lock.name}: {package.requirement} is not exact"
        found[package.name] = Version(specifier.version)
    return found


def assert_satisfies(lock: Path, requirements: list[str]) -> None:
    locked = pins(lock)
    for line in requirements:
        requirement = Requirement(line)
        if requirement.marker is not None and not requirement.marker.evaluate():
            continue
        name = canonicalize_name(requirement.name)
        assert name in locked, f"{lock.name} lacks {name}: run `make lock`"
        assert requirement.specifier.contains(locked[name], prereleases=True), (
            f"{lock.name} pins {name}=={locked[name]}, outside {line}: run `make lock`"
        )


@pytest.mark.parametrize("name", LOCK_FILES)
def test_every_lock_pins_releases_exactly_and_says_how_it_is_made(name):
    lock = LOCKS / name
    assert "#    make lock" in lock.read_text(encoding="utf-8")
    locked = pins(lock)
    assert {"pip", "setuptools"} <= set(locked)
    # A local label (+cpu, +cu124) would tie the lock to one accelerator's wheels.
    assert all(not version.local for version in locked.values())


def test_pipeline_lock_satisfies_pyproject_with_the_test_extra():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert_satisfies(
        LOCKS / "pipeline.txt",
        project["dependencies"] + project["optional-dependencies"]["test"],
    )


def test_triton_server_lock_satisfies_its_requirements():
    lines = [p.requirement for p in read_requirements(ROOT / "requirements-triton.txt")]
    assert_satisfies(LOCKS / "triton-server.txt", lines)


def test_serving_lock_holds_every_listed_package_at_its_pin():
    assert_satisfies(LOCKS / "serving-models.txt", [p.requirement for p in serving_packages()])
    locked = pins(serving_image.LOCK)
    assert "tokenizers" in locked and "huggingface-hub" in locked  # listed, and what it needs


def test_serving_lock_is_in_the_image_build_context_and_installed_by_the_dockerfile():
    # The image is built from the package folder (also shipped in the wheel), so the lock lives
    # there and locks/ only links to it.
    assert (LOCKS / "serving-models.txt").resolve() == serving_image.LOCK
    assert serving_image.LOCK.parent == serving_image.SERVING_IMAGE_DIR
    dockerfile = serving_image.DOCKERFILE.read_text(encoding="utf-8")
    assert "COPY requirements-lock.txt" in dockerfile
    assert "--requirement /opt/mme-factory/requirements-lock.txt" in dockerfile


def test_serving_lock_keeps_to_releases_for_the_images_python_310():
    caps = read_requirements(LOCKS / "serving-models-python310.txt")
    locked = pins(serving_image.LOCK)
    for cap in caps:
        assert Requirement(cap.requirement).specifier.contains(locked[cap.name])


def test_a_new_pin_in_the_lock_gives_a_new_image_digest(tmp_path, monkeypatch):
    before = image_digest()
    lock = tmp_path / "requirements-lock.txt"
    lock.write_text(serving_image.LOCK.read_text(encoding="utf-8").replace("tqdm==", "tqdm==0"))
    monkeypatch.setattr(serving_image, "LOCK", lock)
    assert image_digest() != before
