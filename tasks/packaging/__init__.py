"""Triton model repositories built from a run's exports, one tarball per TargetModel."""

from tasks.packaging.package_triton import (
    PackagedModel,
    PackageSummary,
    package_triton,
    package_triton_task,
)

__all__ = ["PackageSummary", "PackagedModel", "package_triton", "package_triton_task"]
