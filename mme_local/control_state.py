"""The control plane's resources (models, endpoint configs, endpoints), persisted as JSON.

Written atomically after every change, so endpoints survive a restart of the service.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ACCOUNT = "000000000000"


@dataclass
class ControlState:
    models: dict[str, dict[str, Any]] = field(default_factory=dict)
    endpoint_configs: dict[str, dict[str, Any]] = field(default_factory=dict)
    endpoints: dict[str, dict[str, Any]] = field(default_factory=dict)


class ControlStateFile:
    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> ControlState:
        try:
            loaded = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return ControlState()
        return ControlState(**loaded)

    def save(self, state: ControlState) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_name(f".{self.path.name}.partial")
        partial.write_text(json.dumps(asdict(state), indent=2, default=str), encoding="utf-8")
        os.replace(partial, self.path)


def arn(region: str, kind: str, name: str) -> str:
    return f"arn:aws:sagemaker:{region}:{ACCOUNT}:{kind}/{name.lower()}"
