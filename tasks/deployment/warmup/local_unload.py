"""A customer's models loaded on the local service's endpoints, and unloading them.

On SageMaker a TargetModel whose tarball was deleted stays cached on the instances until it is
evicted, and nothing can unload it; the serving path refuses an offboarded customer instead.
The local service (an endpoint URL on this machine) lists what each endpoint has loaded
(`GET /mme-local/endpoints/<name>`) and unloads a customer's models on request
(`POST /mme-local/endpoints/<name>/unload`), so offboarding leaves nothing of it loaded there.
"""

from __future__ import annotations

import httpx

from mme_factory.aws_clients import sagemaker_client
from mme_factory.errors import MmeFactoryError
from mme_factory.protocol import PING_ROUTE, UNLOAD_PREFIX, UNLOADED, unload_path
from mme_factory.settings import Settings
from tasks.deployment.warmup.local_usage import is_local_service, local_description

UNLOAD_TIMEOUT_S = 120.0
PING_TIMEOUT_S = 5.0


class UnloadFailed(MmeFactoryError):
    """The local service did not unload a customer's models."""


def local_service_url(settings: Settings) -> str | None:
    """The endpoints' URL when it is the local service; None on AWS or another service."""
    url = settings.endpoints.sagemaker_endpoint_url
    return url if url is not None and is_local_service(url, settings) else None


def local_endpoints(settings: Settings) -> list[str]:
    """Every endpoint the local service has, through its ListEndpoints."""
    paginator = sagemaker_client(settings).get_paginator("list_endpoints")
    return sorted(e["EndpointName"] for page in paginator.paginate() for e in page["Endpoints"])


def loaded_models(settings: Settings, customer: str) -> dict[str, list[str]]:
    """The customer's TargetModels loaded now, by local endpoint; empty when not local."""
    url = local_service_url(settings)
    if url is None or not _answers(url):
        return {}  # a local service that is not running has nothing loaded
    loaded: dict[str, list[str]] = {}
    for endpoint in local_endpoints(settings):
        description = local_description(url, endpoint) or {}
        keys = sorted(
            model["target_model"]
            for model in description.get("models", [])
            if isinstance(model, dict)
            and str(model.get("target_model", "")).startswith(f"{customer}/")
        )
        if keys:
            loaded[endpoint] = keys
    return loaded


def _answers(url: str) -> bool:
    try:
        answer = httpx.get(f"{url.rstrip('/')}{PING_ROUTE}", timeout=PING_TIMEOUT_S)
        return answer.status_code == 200
    except httpx.HTTPError:
        return False


def unload_customer(settings: Settings, endpoint: str, customer: str) -> list[str]:
    """Unload the customer's TargetModels on one local endpoint; the keys it unloaded."""
    url = local_service_url(settings)
    if url is None:
        return []
    where = f"{url.rstrip('/')}{unload_path(endpoint)}"
    try:
        response = httpx.post(where, json={UNLOAD_PREFIX: f"{customer}/"}, timeout=UNLOAD_TIMEOUT_S)
    except httpx.HTTPError as error:
        raise UnloadFailed(f"cannot unload {customer}'s models at {where}: {error}") from None
    if response.status_code != 200:
        raise UnloadFailed(
            f"{where} answered {response.status_code} {response.text.strip()!r}: the local "
            f"service did not unload {customer}'s models; restart it with `mme-factory down` "
            "and `mme-factory up`, then offboard again"
        )
    return list(response.json().get(UNLOADED, []))
