"""The service's HTTP side: its routes, and how a request body is read within its limits.

app.py            the application: every route, and endpoints restored and stopped
control_api.py    `POST /`: the SageMaker control plane over AWS JSON 1.1
invocations.py    `POST /endpoints/{name}/invocations`: InvokeEndpoint
local_routes.py   `/mme-local/endpoints/{name}[/unload]`: describe, unload by prefix
request_body.py   bodies read up to their limits
"""

from mme_local.routes.app import service_app
from mme_local.routes.request_body import (
    MAX_CONTROL_BODY_BYTES,
    MAX_INVOKE_BODY_BYTES,
    read_body,
    read_json_object,
)

__all__ = [
    "MAX_CONTROL_BODY_BYTES",
    "MAX_INVOKE_BODY_BYTES",
    "read_body",
    "read_json_object",
    "service_app",
]
