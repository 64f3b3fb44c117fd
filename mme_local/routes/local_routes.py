"""Unload the TargetModels under a key prefix: `POST /mme-local/endpoints/{name}/unload`.

SageMaker has no such call: a TargetModel whose tarball was deleted stays cached on the
instances until it is evicted. Offboarding a customer uses this route of the local endpoint so
that nothing of the customer stays loaded here. The body is `{"prefix": "<customer>/"}`; the
answer `{"endpoint", "prefix", "unloaded": [TargetModel keys]}`, once their unloads are done.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from mme_local.aws_errors import AwsError
from mme_local.request_body import MAX_CONTROL_BODY_BYTES, read_json_object

if TYPE_CHECKING:
    from mme_local.endpoint_memory import EndpointMemory
    from mme_local.endpoint_runtime import EndpointRuntime
    from mme_local.model_cache import ModelCache

# One or more whole folders of TargetModel keys, e.g. `acme/` or `acme/classifier/`.
PREFIX = re.compile(r"(?:[A-Za-z0-9][A-Za-z0-9._=@+-]*/)+")


async def unload_under_prefix(cache: ModelCache, memory: EndpointMemory, prefix: str) -> list[str]:
    """Unload every loaded TargetModel whose key starts with `prefix`; their keys, sorted.

    The models leave the cache inside its change lock, so no caller is handed one afterwards;
    Triton finishes requests already running on a model before it unloads it.
    """
    async with cache.changing():
        victims = [entry for entry in cache.models() if entry.target.key.startswith(prefix)]
        unloads = [memory._start_eviction(victim) for victim in victims]
    for unload in unloads:
        await asyncio.shield(unload)
    return sorted(victim.target.key for victim in victims)


def unload_route(runtimes: Mapping[str, EndpointRuntime]) -> Route:
    """The route, reading the service's endpoints from `runtimes` at each request."""

    async def unload(request: Request) -> Response:
        name = request.path_params["name"]
        runtime = runtimes.get(name)
        if runtime is None:
            return JSONResponse({"error": "unknown endpoint"}, 404)
        try:
            params = await read_json_object(request, MAX_CONTROL_BODY_BYTES)
        except AwsError as error:
            return JSONResponse({"error": error.message}, error.status)
        prefix = params.get("prefix")
        if not isinstance(prefix, str) or not PREFIX.fullmatch(prefix):
            return JSONResponse(
                {
                    "error": f"'prefix' must name whole folders of TargetModel keys, e.g. 'acme/'; "
                    f"got {prefix!r}"
                },
                400,
            )
        unloaded = await runtime.unload_prefix(prefix)
        return JSONResponse({"endpoint": name, "prefix": prefix, "unloaded": unloaded})

    return Route("/mme-local/endpoints/{name}/unload", unload, methods=["POST"])
