"""One run directory per training run: `<state_dir>/runs/<customer>/<run_id>/`.

It holds `run.json` (customer, data, seed, versions, timings, each kind's outcome) and one
directory per kind with the exported model and its `metadata.json`, so later stages and
people can see exactly what was built.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mme_factory.naming import check_customer_id


@dataclass(frozen=True)
class RunDirectory:
    path: Path
    customer: str
    run_id: str

    @classmethod
    def create(cls, runs_dir: Path, customer: str, data_sha256: str) -> RunDirectory:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        run_id = f"{stamp}-{data_sha256[:8]}"
        path = runs_dir / check_customer_id(customer) / run_id
        path.mkdir(parents=True, exist_ok=False)
        return cls(path, customer, run_id)

    @classmethod
    def open(cls, path: Path) -> RunDirectory:
        record = json.loads((path / "run.json").read_text(encoding="utf-8"))
        return cls(path, record["customer"], record["run_id"])

    def kind_dir(self, kind: str) -> Path:
        return self.path / kind

    def write_json(self, relative: str, data: dict[str, Any]) -> Path:
        target = self.path / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{target.name}.partial")
        partial.write_text(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n", "utf-8")
        partial.replace(target)
        return target

    def read_json(self, relative: str) -> dict[str, Any]:
        return json.loads((self.path / relative).read_text(encoding="utf-8"))
