"""The service's own routes beside SageMaker's APIs: describe an endpoint, unload by prefix.

`GET /mme-local/endpoints/{name}`: the endpoint's memory (PSS and RSS), loaded models, sizes,
load timings and, per TargetModel loaded since it started, footprint and customer traffic.

`POST /mme-local/endpoints/{name}/unload`: SageMaker has no such call: a TargetModel whose
tarball was deleted stays cached on the instances until it is evicted. Offboarding a customer
uses this route of the local endpoint so that nothing of the customer stays loaded here. The
body is `{"prefix": "<customer>/"}`; the answer `{"endpoint", "prefix", "unloaded": [TargetModel
keys]}`, once their unloads are done. Loads under the prefix in flight are withdrawn and listed
too: once the answer is sent, nothing under the prefix is loaded, in Triton or unpacked on disk.
"""

from __future__ import annotations

import re

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from mme_factory.protocol import ENDPOINT_ROUTE, UNLOAD_PREFIX, UNLOAD_ROUTE, UNLOADED
from mme_local.aws_errors import AwsError
from mme_local.control import RunningEndpoints
from mme_local.routes.request_body import MAX_CONTROL_BODY_BYTES, read_json_object

# One or more whole folders of TargetModel keys, e.g. `acme/` or `acme/classifier/`.
PREFIX = re.compile(r"(?:[A-Za-z0-9][A-Za-z0-9._=@+-]*/)+")


def describe_route(endpoints: RunningEndpoints) -> Route:
    """The route, reading the service's endpoints at each request."""

    async def describe(request: Request) -> Response:
        runtime = endpoints.runtimes.get(request.path_params["name"])
        if runtime is None:
            return JSONResponse({"error": "unknown endpoint"}, 404)
        return JSONResponse(runtime.describe())

    return Route(ENDPOINT_ROUTE, describe, methods=["GET"])


def unload_route(endpoints: RunningEndpoints) -> Route:
    """The route, reading the service's endpoints at each request."""

    async def unload(request: Request) -> Response:
        name = request.path_params["name"]
        runtime = endpoints.runtimes.get(name)
        if runtime is None:
            return JSONResponse({"error": "unknown endpoint"}, 404)
        try:
            params = await read_json_object(request, MAX_CONTROL_BODY_BYTES)
        except AwsError as error:
            return JSONResponse({"error": error.message}, error.status)
        prefix = params.get(UNLOAD_PREFIX)
        if not isinstance(prefix, str) or not PREFIX.fullmatch(prefix):
            return JSONResponse(
                {
                    "error": f"{UNLOAD_PREFIX!r} must name whole folders of TargetModel keys, "
                    f"e.g. 'acme/'; got {prefix!r}"
                },
                400,
            )
        unloaded = await runtime.unload_prefix(prefix)
        return JSONResponse({"endpoint": name, UNLOAD_PREFIX: prefix, UNLOADED: unloaded})

    return Route(UNLOAD_ROUTE, unload, methods=["POST"])
