"""The pipeline image the production pool's jobs run, and its name.

    <prefect.pipeline_image_repository>:<first 12 hex of the digest of its build inputs>

The inputs are what the Dockerfile copies: the Dockerfile and its ignore file, the lock files
and the project's sources. A changed pin or a changed line of code gives a new tag, so a
deployment never runs an image built from other code under the same name.
`prefect.pipeline_image` names an image built elsewhere instead. `pipeline_image` is also a
build step of `prefect.yaml` (id `pipeline-image`): its `image` output fills the production
deployments' `image` job variable.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

from deployments.declarations import PROJECT_ROOT
from mme_factory.settings import Settings, load_settings

DOCKERFILE = PROJECT_ROOT / "deployments" / "pipeline-image" / "Dockerfile"
LOCK_FILES = (PROJECT_ROOT / "locks" / "pipeline.txt", PROJECT_ROOT / "locks" / "model-files.txt")
DIGEST_CHARS = 12
# The build context the Dockerfile copies, relative to the project root.
SOURCE_FILES = ("pyproject.toml", "README.md", "prefect.yaml")
SOURCE_DIRS = (
    "mme_factory",
    "tasks",
    "planner",
    "flows",
    "deployments",
    "cli",
    "triton_models",
    "config",
)
SKIPPED_PARTS = {"__pycache__", ".pytest_cache"}


def build_inputs(root: Path = PROJECT_ROOT) -> Iterator[Path]:
    dockerfile = root / DOCKERFILE.relative_to(PROJECT_ROOT)
    yield dockerfile
    yield dockerfile.with_name("Dockerfile.dockerignore")
    for lock in LOCK_FILES:
        yield root / lock.relative_to(PROJECT_ROOT)
    for name in SOURCE_FILES:
        yield root / name
    for name in SOURCE_DIRS:
        for path in sorted((root / name).rglob("*")):
            relative = path.relative_to(root)
            if path.is_file() and not SKIPPED_PARTS & set(relative.parts) and path.suffix != ".pyc":
                yield path


def image_digest(root: Path = PROJECT_ROOT) -> str:
    digest = hashlib.sha256()
    for path in build_inputs(root):
        content = path.read_bytes() if path.is_file() else b"<missing>"
        digest.update(str(path.relative_to(root)).encode() + b"\0" + content + b"\0")
    return digest.hexdigest()


def pipeline_image_uri(settings: Settings) -> str:
    if settings.prefect.pipeline_image:
        return settings.prefect.pipeline_image
    return f"{settings.prefect.pipeline_image_repository}:{image_digest()[:DIGEST_CHARS]}"


def pipeline_image(settings_file: str | None = None) -> dict[str, str]:
    """Build step for `prefect deploy`: the image name, without building it."""
    image = pipeline_image_uri(load_settings(settings_file))
    name, _, tag = image.rpartition(":")
    return {"image": image, "image_name": name, "tag": tag}


def build_command(image: str) -> list[str]:
    return [
        "docker",
        "build",
        "--platform",
        "linux/amd64",
        "--file",
        str(DOCKERFILE.relative_to(PROJECT_ROOT)),
        "--tag",
        image,
        ".",
    ]
