"""The control plane's resources (models, endpoint configs, endpoints), persisted as JSON.

Written atomically after every change, so endpoints survive a restart of the service. Each
endpoint keeps what it serves (`endpoint_specs`), resolved when it was created, because SageMaker
lets its config and model be deleted while it runs. A file the service cannot read is moved
aside, never a reason not to start.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

from pydantic import BaseModel, Field

from mme_local.control.records import (
    EndpointConfigRecord,
    EndpointRecord,
    EndpointSpec,
    ModelRecord,
)

ACCOUNT = "000000000000"
logger = logging.getLogger("mme_local")


class ControlState(BaseModel):
    models: dict[str, ModelRecord] = Field(default_factory=dict)
    endpoint_configs: dict[str, EndpointConfigRecord] = Field(default_factory=dict)
    endpoints: dict[str, EndpointRecord] = Field(default_factory=dict)
    # Per endpoint: what it serves, as resolved by CreateEndpoint.
    endpoint_specs: dict[str, EndpointSpec] = Field(default_factory=dict)


class ControlStateFile:
    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> ControlState:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return ControlState()
        try:
            # Anything but a state this service wrote is a ValueError (pydantic's included).
            return ControlState.model_validate_json(text)
        except ValueError as error:
            aside = self.path.with_name(f"{self.path.name}.unreadable-{int(time.time())}")
            os.replace(self.path, aside)
            logger.error(
                "control-plane state %s is unreadable (%s); moved to %s", self.path, error, aside
            )
            return ControlState()

    def save(self, state: ControlState) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_name(f".{self.path.name}.partial")
        text = state.model_dump_json(by_alias=True, exclude_none=True, indent=2)
        partial.write_text(text, encoding="utf-8")
        os.replace(partial, self.path)


def arn(region: str, kind: str, name: str) -> str:
    return f"arn:aws:sagemaker:{region}:{ACCOUNT}:{kind}/{name.lower()}"
