"""A customer's tiny models served by a real mme_local + Triton, as promote leaves them.

Each version is a tiny run (different seeds, different models) packaged as the pipeline does and
uploaded under its endpoint's prefix in a local store; `entries` are the manifest entries that
promote would write for it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mme_factory.model_kinds import ModelKind
from mme_factory.naming import endpoint_name_for, model_data_prefix
from mme_factory.settings import load_settings
from mme_factory.store import ArtifactStore, file_sha256
from tasks.packaging.package_triton import package_triton
from test_support.mme_local_harness import clients, create_endpoint, wait_in_service
from test_support.tiny_exports import write_tiny_run


def publish_version(
    store: ArtifactStore, work: Path, env: str, customer: str, version: int, seed: int
) -> dict[str, dict[str, Any]]:
    """Package and upload one version of every kind; the manifest entry of each kind."""
    run = write_tiny_run(work / f"state-v{version}", customer, f"run-{version}", seed=seed)
    summary = package_triton(run, load_settings(environ={}), version=f"v{version}")
    entries: dict[str, dict[str, Any]] = {}
    for package in summary.packages:
        endpoint = endpoint_name_for(package.kind, env)
        target_model = f"{customer}/{package.target}/v{version}.tar.gz"
        tarball = Path(package.tarball)
        store.put_file(model_data_prefix(endpoint) + target_model, tarball, file_sha256(tarball))
        entry = entries.setdefault(
            package.kind, {"endpoint": endpoint, "version": version, "targets": {}}
        )
        entry["targets"][package.role or package.kind] = target_model
    return entries


def create_kind_endpoints(service_url: str, env: str) -> None:
    """One endpoint per kind on the service, each reading its prefix of the (local) store."""
    sagemaker, _ = clients(service_url)
    names = [endpoint_name_for(kind.value, env) for kind in ModelKind]
    for name in names:
        create_endpoint(sagemaker, name, f"s3://bucket/{model_data_prefix(name)}", wait=False)
    for name in names:
        wait_in_service(sagemaker, name)
