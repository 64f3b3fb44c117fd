"""`POST /endpoints/{name}/invocations`: InvokeEndpoint, with its metrics.

A call whose CustomAttributes hold the warm-up mark counts in `Invocations` and as use of its
model, not as customer traffic.
"""

from __future__ import annotations

import logging
import time

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from mme_factory.protocol import (
    CUSTOM_ATTRIBUTES_HEADER,
    INVOKED_VARIANT_HEADER,
    JSON_CONTENT_TYPE,
    TARGET_MODEL_HEADER,
    is_warmup,
)
from mme_local.aws_errors import AwsError, endpoint_not_found, internal_failure, validation_error
from mme_local.control import RunningEndpoints
from mme_local.routes.request_body import MAX_INVOKE_BODY_BYTES, read_body
from mme_local.runtime import InvalidTargetModel, Metrics, TargetModel

logger = logging.getLogger("mme_local")
DEFAULT_VARIANT = "AllTraffic"


def invocations_route(endpoints: RunningEndpoints, metrics: Metrics) -> Route:
    async def invoke_endpoint(request: Request) -> Response:
        started = time.perf_counter()
        name = request.path_params["name"]
        labels = {"endpoint": name}
        try:
            response, model_s = await _invoke(endpoints, request, name)
        except Exception as unexpected:
            if not isinstance(unexpected, AwsError):
                logger.exception("InvokeEndpoint %s failed", name)
            error = unexpected if isinstance(unexpected, AwsError) else internal_failure(unexpected)
            status_class = "Invocation4XXErrors" if error.status < 500 else "Invocation5XXErrors"
            metrics.add(status_class, **labels)
            return error.response()
        finally:
            metrics.add("Invocations", **labels)
        overhead = time.perf_counter() - started - model_s
        metrics.observe_seconds("OverheadLatency", max(overhead, 0.0), **labels)
        return response

    return Route("/endpoints/{name}/invocations", invoke_endpoint, methods=["POST"])


async def _invoke(
    endpoints: RunningEndpoints, request: Request, name: str
) -> tuple[Response, float]:
    """The endpoint's answer, and the seconds its runtime took."""
    runtime = endpoints.runtimes.get(name)
    if runtime is None:
        raise endpoint_not_found(name)
    body = await read_body(request, MAX_INVOKE_BODY_BYTES)
    try:
        target = TargetModel.parse(request.headers.get(TARGET_MODEL_HEADER))
    except InvalidTargetModel as error:
        raise validation_error(str(error)) from None
    content_type = request.headers.get("content-type", JSON_CONTENT_TYPE)
    warmup = is_warmup(request.headers.get(CUSTOM_ATTRIBUTES_HEADER))
    model_started = time.perf_counter()
    _, headers, answer = await runtime.invoke(
        target, body, content_type, customer_traffic=not warmup
    )
    model_s = time.perf_counter() - model_started
    answer_type = headers.get("content-type") or headers.get("Content-Type")
    variant = {INVOKED_VARIANT_HEADER: endpoints.variants.get(name, DEFAULT_VARIANT)}
    response = Response(answer, 200, variant, media_type=answer_type or JSON_CONTENT_TYPE)
    return response, model_s
