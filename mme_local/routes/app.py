"""The service's HTTP application: SageMaker's control plane and runtime APIs on one port.

- `POST /` with `X-Amz-Target: SageMaker.<Op>`: the control-plane subset (`control_api.py`).
- `POST /endpoints/{name}/invocations`: InvokeEndpoint (`invocations.py`).
- `GET /metrics`: Prometheus text; `GET /ping`: health.
- `GET /mme-local/endpoints/{name}` and `POST /mme-local/endpoints/{name}/unload`: the
  service's own routes (`local_routes.py`).

Saved endpoints come back when the application starts, after the models unpacked by an earlier
run are deleted (none is loaded in a Triton that has just started); every endpoint stops when it
ends.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from prometheus_client import CONTENT_TYPE_LATEST
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from mme_factory.protocol import METRICS_ROUTE, PING_ROUTE
from mme_local.control import ControlPlane, RunningEndpoints
from mme_local.routes.control_api import control_route
from mme_local.routes.invocations import invocations_route
from mme_local.routes.local_routes import describe_route, unload_route
from mme_local.runtime import Metrics


def service_app(control: ControlPlane, endpoints: RunningEndpoints, metrics: Metrics) -> Starlette:
    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        endpoints.sweep_unpacked_models()
        await control.restore()
        try:
            yield
        finally:
            await endpoints.shutdown()

    async def ping(_: Request) -> Response:
        return PlainTextResponse("ok")

    async def metrics_text(_: Request) -> Response:
        return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)

    return Starlette(
        routes=[
            control_route(control),
            invocations_route(endpoints, metrics),
            Route(PING_ROUTE, ping, methods=["GET"]),
            Route(METRICS_ROUTE, metrics_text, methods=["GET"]),
            describe_route(endpoints),
            unload_route(endpoints),
        ],
        lifespan=lifespan,
    )
