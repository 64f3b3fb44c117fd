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

from pydantic import JsonValue

from mme_factory.naming import check_customer_id
from mme_factory.records import KindMetadata, RunRecord
from mme_factory.records.json_record import write_whole


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
        record = RunRecord.read(path)
        return cls(path, record.customer, record.run_id)

    def kind_dir(self, kind: str) -> Path:
        return self.path / kind

    def record(self) -> RunRecord:
        return RunRecord.read(self.path)

    def metadata(self, kind: str) -> KindMetadata:
        return KindMetadata.read(self.kind_dir(kind))

    def write_json(self, relative: str, data: dict[str, JsonValue]) -> Path:
        """A file of the run other than its records (e.g. the golden-set metrics)."""
        target = self.path / relative
        write_whole(target, json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")
        return target
