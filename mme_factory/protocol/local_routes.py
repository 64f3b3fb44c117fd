"""The local endpoint service's own routes, beside SageMaker's two APIs.

SageMaker has neither: `ENDPOINT_ROUTE` describes an endpoint (memory, loaded models, per
TargetModel footprint and customer traffic, recent loads), which the warm-up reads;
`UNLOAD_ROUTE` takes `{"prefix": "<customer>/"}` and unloads the TargetModels under it, which
offboarding calls, and answers `{"endpoint", "prefix", "unloaded": [TargetModel keys]}`.
"""

from __future__ import annotations

PING_ROUTE = "/ping"
METRICS_ROUTE = "/metrics"
ENDPOINT_ROUTE = "/mme-local/endpoints/{name}"
UNLOAD_ROUTE = "/mme-local/endpoints/{name}/unload"
UNLOAD_PREFIX = "prefix"  # the unload body's one field
UNLOADED = "unloaded"  # the answer's list of TargetModel keys


def endpoint_path(endpoint: str) -> str:
    """The path that describes `endpoint` (`GET`)."""
    return ENDPOINT_ROUTE.format(name=endpoint)


def unload_path(endpoint: str) -> str:
    """The path that unloads TargetModels of `endpoint` by key prefix (`POST`)."""
    return UNLOAD_ROUTE.format(name=endpoint)
