"""`POST /` with `X-Amz-Target: SageMaker.<Op>`: the control-plane subset over AWS JSON 1.1."""

from __future__ import annotations

import json
import logging

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from mme_factory.protocol import AWS_JSON_CONTENT_TYPE, UNKNOWN_OPERATION
from mme_local.aws_errors import AwsError, internal_failure
from mme_local.control import ControlPlane
from mme_local.routes.request_body import MAX_CONTROL_BODY_BYTES, read_json_object

TARGET_HEADER = "x-amz-target"
logger = logging.getLogger("mme_local")


def control_route(control: ControlPlane) -> Route:
    async def control_plane(request: Request) -> Response:
        target = request.headers.get(TARGET_HEADER, "")
        service, _, operation = target.partition(".")
        try:
            if service != "SageMaker" or not operation:
                raise AwsError(400, UNKNOWN_OPERATION, f"unknown target {target!r}")
            params = await read_json_object(request, MAX_CONTROL_BODY_BYTES)
            answer = await control.handle(operation, params)
        except AwsError as error:
            return error.response()
        except Exception as unexpected:
            logger.exception("control plane %s failed", operation)
            return internal_failure(unexpected).response()
        return Response(json.dumps(answer), media_type=AWS_JSON_CONTENT_TYPE)

    return Route("/", control_plane, methods=["POST"])
