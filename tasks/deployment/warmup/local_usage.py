"""The local service's figures: `GET <url>/mme-local/endpoints/<name>`, an mme_local route.

It gives the endpoint's model-cache budget, the memory its Triton holds now and, per TargetModel
it has loaded since it started, the measured footprint, whether it is loaded and its customer
traffic in the last hour (warm-up calls, marked by their CustomAttributes, are not counted).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlparse

import httpx

from mme_factory.aws_clients import LOOPBACK_HOSTS
from mme_factory.protocol import endpoint_path
from mme_factory.settings import Settings
from tasks.deployment.warmup.endpoint_usage import EndpointUsage, ModelUsage

DESCRIBE_TIMEOUT_S = 10.0


def usage_from_description(endpoint: str, description: dict[str, Any]) -> EndpointUsage | None:
    """The local service's description of `endpoint`; None when it has no per-model usage."""
    described = description.get("target_models")
    if not isinstance(described, dict) or "budget_bytes" not in description:
        return None
    models = {
        key: ModelUsage(
            footprint_bytes=int(entry.get("footprint_bytes") or 0),
            loaded=bool(entry.get("loaded")),
            invocations_last_hour=int(entry.get("invocations_last_hour") or 0),
            last_invoked_unix=entry.get("last_invoked_unix"),
        )
        for key, entry in described.items()
    }
    in_models = sum(m.footprint_bytes for m in models.values() if m.loaded)
    # What Triton and its backends hold with no model loaded: not the models' to use.
    reserved = max(0, int(description.get("memory_bytes") or 0) - in_models)
    return EndpointUsage(
        endpoint=endpoint,
        source="mme_local",
        budget_bytes=int(description["budget_bytes"]),
        reserved_bytes=reserved,
        models=models,
    )


def is_local_service(url: str, settings: Settings) -> bool:
    """Whether `url` is the local service: it listens on this machine only."""
    host = urlparse(url).hostname
    return host in LOOPBACK_HOSTS or host == settings.mme_local.host


def local_description(url: str, endpoint: str) -> dict[str, Any] | None:
    """`GET <url>/mme-local/endpoints/<endpoint>`; None when the service has no such route."""
    try:
        response = httpx.get(
            f"{url.rstrip('/')}{endpoint_path(endpoint)}", timeout=DESCRIBE_TIMEOUT_S
        )
    except httpx.HTTPError:
        return None
    if response.status_code != 200:
        return None
    try:
        body = response.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None
