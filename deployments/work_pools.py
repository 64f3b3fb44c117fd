"""The work pools the deployments run on, and whether a worker is online on one.

`mme-factory-local` is a process pool: its worker runs each flow run as a subprocess on this
machine. `mme-factory-k8s` is a Kubernetes pool: its worker (prefect-kubernetes, in the cluster)
runs each flow run as a Job of the pipeline image. Its base job template is the Kubernetes
worker's default plus a GPU request, a node selector and tolerations
(`k8s-base-job-template.json`), and it refuses job variables it does not declare.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mme_factory.errors import MmeFactoryError

K8S_TEMPLATE = Path(__file__).resolve().parent / "k8s-base-job-template.json"


@dataclass(frozen=True)
class WorkPoolSpec:
    name: str
    type: str
    description: str

    def base_job_template(self) -> dict[str, Any]:
        if self.type == "kubernetes":
            return json.loads(K8S_TEMPLATE.read_text())
        from prefect.workers.process import ProcessWorker

        return ProcessWorker.get_default_base_job_template()


LOCAL_POOL = WorkPoolSpec(
    "mme-factory-local", "process", "mme-factory's flow runs as processes on this machine"
)
K8S_POOL = WorkPoolSpec(
    "mme-factory-k8s", "kubernetes", "mme-factory's flow runs as Kubernetes Jobs (pipeline image)"
)
POOLS = {pool.name: pool for pool in (LOCAL_POOL, K8S_POOL)}


def ensure_pool(api_url: str, pool: WorkPoolSpec) -> bool:
    """Create the pool with its base job template unless it exists; True when created.

    An existing pool is left as it is: its template may carry a cluster's own settings.
    """
    from prefect.client.orchestration import SyncPrefectClient
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound

    with SyncPrefectClient(api_url) as client:
        try:
            existing = client.read_work_pool(pool.name)
        except ObjectNotFound:
            existing = None
        if existing is not None:
            if existing.type != pool.type:
                raise MmeFactoryError(
                    f"work pool {pool.name!r} exists with type {existing.type!r}, not "
                    f"{pool.type!r}; delete it (prefect work-pool delete {pool.name}) and retry"
                )
            return False
        try:
            client.create_work_pool(
                WorkPoolCreate(
                    name=pool.name,
                    type=pool.type,
                    description=pool.description,
                    base_job_template=pool.base_job_template(),
                )
            )
        except ObjectAlreadyExists:  # created by someone else meanwhile
            return False
    return True


def online_workers(api_url: str, pool_name: str, timeout_s: float = 2.0) -> list[str]:
    """Names of the pool's workers whose last heartbeat the server still counts as online."""
    url = f"{api_url}/work_pools/{urllib.parse.quote(pool_name)}/workers/filter"
    body = json.dumps({"workers": {"status": {"any_": ["ONLINE"]}}}).encode()
    request = urllib.request.Request(
        url, data=body, headers={"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            workers = json.loads(response.read())
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError, ValueError):
        return []
    return [worker["name"] for worker in workers if worker.get("status") == "ONLINE"]
