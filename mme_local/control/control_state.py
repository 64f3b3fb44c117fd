"""The control plane's resources (models, endpoint configs, endpoints), persisted as JSON.

Written atomically after every change, so endpoints survive a restart of the service. Each
endpoint keeps what it serves (`endpoint_specs`), resolved when it was created, because SageMaker
lets its config and model be deleted while it runs. A file the service cannot read is moved
aside, never a reason not to start.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

ACCOUNT = "000000000000"
logger = logging.getLogger("mme_local")


@dataclass
class ControlState:
    models: dict[str, dict[str, Any]] = field(default_factory=dict)
    endpoint_configs: dict[str, dict[str, Any]] = field(default_factory=dict)
    endpoints: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Per endpoint: its variant name, model-data prefix and production variant, as resolved
    # by CreateEndpoint.
    endpoint_specs: dict[str, dict[str, Any]] = field(default_factory=dict)


class ControlStateFile:
    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> ControlState:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return ControlState()
        try:
            return _parse(text)
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
        partial.write_text(json.dumps(asdict(state), indent=2, default=str), encoding="utf-8")
        os.replace(partial, self.path)


def _parse(text: str) -> ControlState:
    """The state in `text`; ValueError when it is not a state this service wrote."""
    loaded = json.loads(text)
    if not isinstance(loaded, dict):
        raise ValueError("not a JSON object")
    sections: dict[str, dict[str, dict[str, Any]]] = {}
    for section in fields(ControlState):
        value = loaded.get(section.name, {})
        if not isinstance(value, dict) or not all(isinstance(v, dict) for v in value.values()):
            raise ValueError(f"{section.name} is not an object of records")
        sections[section.name] = value
    return ControlState(**sections)


def arn(region: str, kind: str, name: str) -> str:
    return f"arn:aws:sagemaker:{region}:{ACCOUNT}:{kind}/{name.lower()}"
