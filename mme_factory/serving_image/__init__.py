"""The serving image: SageMaker's Triton image plus the pinned packages Python-backend models need.

    mme_factory/serving_image/
      stock-image.txt       what the stock image's Python backend has (numpy<2, pip, ...)
      requirements.txt      the exact pins the serving image adds
      requirements-lock.txt both lists with everything they need, each at an exact version
                            (`make lock`; linked as locks/serving-models.txt)
      Dockerfile            FROM the stock image, installs requirements-lock.txt

The lists are read by the packager (which imports a Python step may make) and by the local
Triton's model-environment check; the lock is what the image and the local Triton's model
environment install, so both hold the same versions of every package.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from mme_factory.errors import MmeFactoryError

SERVING_IMAGE_DIR = Path(__file__).resolve().parent
REQUIREMENTS = SERVING_IMAGE_DIR / "requirements.txt"
LOCK = SERVING_IMAGE_DIR / "requirements-lock.txt"
STOCK_IMAGE = SERVING_IMAGE_DIR / "stock-image.txt"
DOCKERFILE = SERVING_IMAGE_DIR / "Dockerfile"
# The libtorch inside each Triton image's PyTorch backend (NVIDIA's PyTorch container of the same
# release; 24.09 ships 2.5.0a0), as the nearest public torch release.
IMAGE_LIBTORCH = {"24.09": "2.5.0"}


class ServingImageError(MmeFactoryError):
    """The serving image's package lists are malformed, or an image cannot be built or pushed."""


@dataclass(frozen=True)
class ServingPackage:
    name: str  # canonical distribution name: "numpy", "tokenizers"
    requirement: str  # the line as written: "numpy==1.26.4"

    @property
    def pinned_version(self) -> str | None:
        specifiers = list(Requirement(self.requirement).specifier)
        exact = [s.version for s in specifiers if s.operator == "=="]
        return exact[0] if len(specifiers) == 1 and exact else None


def read_requirements(path: Path) -> list[ServingPackage]:
    packages = []
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        try:
            requirement = Requirement(line)
        except InvalidRequirement as error:
            raise ServingImageError(f"{path}:{number}: {error}") from None
        packages.append(ServingPackage(canonicalize_name(requirement.name), line))
    return packages


def serving_packages() -> list[ServingPackage]:
    """Every package a Python-backend model may import on the serving image.

    A package in both lists is the serving image's pin (it replaces the stock one).
    """
    added = read_requirements(REQUIREMENTS)
    names = {package.name for package in added}
    stock = [p for p in read_requirements(STOCK_IMAGE) if p.name not in names]
    unpinned = [p.requirement for p in added if p.pinned_version is None]
    if unpinned:
        raise ServingImageError(f"{REQUIREMENTS}: pin every package exactly: {unpinned}")
    return stock + added


def image_libtorch(triton_version: str) -> str:
    try:
        return IMAGE_LIBTORCH[triton_version]
    except KeyError:
        known = ", ".join(sorted(IMAGE_LIBTORCH))
        raise ServingImageError(
            f"no known libtorch version for Triton image {triton_version} (known: {known}); "
            "give one with --torch-version"
        ) from None


def image_digest() -> str:
    """sha256 of what defines the image (Dockerfile, lists, lock): a new pin, a new tag."""
    digest = hashlib.sha256()
    for path in (DOCKERFILE, STOCK_IMAGE, REQUIREMENTS, LOCK):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()
