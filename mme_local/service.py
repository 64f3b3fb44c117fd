"""The mme_local service: SageMaker's control plane and runtime APIs on one port, each endpoint
a model cache in front of its own Triton server.

    routes/   the HTTP side: every route, request bodies within their limits
    control/  the control plane: models, endpoint configs, endpoints, and the ones running
    runtime/  one endpoint's serving: cache, cold loads, memory budget, Triton process

State lives under `<state_dir>/mme_local/`: `state.json` (the control plane's resources) and,
per endpoint, `endpoints/<name>/` (its Triton's work directory and its models).
"""

from __future__ import annotations

from starlette.applications import Starlette

from mme_factory.settings import Settings
from mme_local.control import ControlPlane, ControlStateFile, RunningEndpoints, ServerFactory
from mme_local.routes import service_app
from mme_local.runtime import Metrics


class MmeLocalService:
    def __init__(self, settings: Settings, server_factory: ServerFactory | None = None) -> None:
        """`server_factory(name)` gives an endpoint its model server (by default a Triton)."""
        root = settings.state_dir / "mme_local"
        self.metrics = Metrics()
        self.endpoints = RunningEndpoints(settings, root, self.metrics, server_factory)
        self.control = ControlPlane(
            ControlStateFile(root / "state.json"),
            settings.region,
            self.endpoints.start_endpoint,
            self.endpoints.stop_endpoint,
        )

    def app(self) -> Starlette:
        return service_app(self.control, self.endpoints, self.metrics)
