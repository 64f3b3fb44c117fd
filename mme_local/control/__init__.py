"""The SageMaker control plane: models, endpoint configs and endpoints, and the ones running.

control_plane.py      the operations (CreateModel ... DeleteEndpoint), checked then applied
control_request.py    a request checked as the real API checks it
records.py            the resources, typed, as SageMaker describes them
control_state.py      the resources saved as one JSON file after every change
running_endpoints.py  one runtime per endpoint, started and stopped in the order asked
"""

from mme_local.control.control_plane import ControlPlane
from mme_local.control.control_state import ControlState, ControlStateFile
from mme_local.control.records import (
    ContainerDefinition,
    EndpointConfigRecord,
    EndpointRecord,
    EndpointSpec,
    EndpointStatus,
    ModelRecord,
    ProductionVariant,
)
from mme_local.control.running_endpoints import RunningEndpoints, ServerFactory, StatusReport

__all__ = [
    "ContainerDefinition",
    "ControlPlane",
    "ControlState",
    "ControlStateFile",
    "EndpointConfigRecord",
    "EndpointRecord",
    "EndpointSpec",
    "EndpointStatus",
    "ModelRecord",
    "ProductionVariant",
    "RunningEndpoints",
    "ServerFactory",
    "StatusReport",
]
