"""Read a request body up to a limit, refusing it as soon as the limit is passed.

A chunked body declares no length, so a limit checked after reading the whole body holds
nothing: the body is read chunk by chunk and refused at the first byte over the limit.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request

from mme_local.aws_errors import body_too_large, control_validation

# SageMaker refuses an InvokeEndpoint body over 6 MiB.
MAX_INVOKE_BODY_BYTES = 6_291_456
# SageMaker's control-plane requests are small JSON documents; 1 MiB bounds what one may hold.
MAX_CONTROL_BODY_BYTES = 1024 * 1024


async def read_body(request: Request, limit: int) -> bytes:
    """The request's body; AwsError 413 once it passes `limit` bytes, declared or sent."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise body_too_large(limit)
    chunks: list[bytes] = []
    received = 0
    async for chunk in request.stream():
        received += len(chunk)
        if received > limit:
            raise body_too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


async def read_json_object(request: Request, limit: int) -> dict[str, Any]:
    """The body as a JSON object (an empty body is `{}`); a 400 for anything else."""
    body = await read_body(request, limit)
    try:
        params = json.loads(body or b"{}")
    except (ValueError, RecursionError):  # RecursionError: brackets nested thousands deep
        raise control_validation("request body is not JSON") from None
    if not isinstance(params, dict):
        raise control_validation("request body is JSON but not an object")
    return params
