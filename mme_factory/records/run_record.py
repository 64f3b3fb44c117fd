"""`<run>/run.json`: one training run of a customer, and each kind's outcome in it.

Written when the run starts (customer, data, seed, library versions, validation report) and
again whenever a kind's metadata.json changes, whose outcome fields it copies; the packager
reads it to find the kinds that were exported.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from mme_factory.records.gate_record import GateRecord
from mme_factory.records.json_record import JsonFile, JsonRecord
from mme_factory.records.kind_metadata import FailureRecord, KindMetadata, Metrics, StepsSummary
from mme_factory.records.training_status import TrainingStatus


class KindOutcome(JsonRecord):
    """A kind's entry in run.json: the outcome fields of its metadata.json."""

    status: TrainingStatus
    metrics: Metrics | None = None
    gate: GateRecord | None = None
    served: str | None = None
    timings: dict[str, float] | None = None
    steps: StepsSummary | None = None
    failure: FailureRecord | None = None

    @classmethod
    def of(cls, metadata: KindMetadata) -> KindOutcome:
        present = metadata.model_fields_set & set(cls.model_fields)
        return cls(**{name: getattr(metadata, name) for name in present})


class RunRecord(JsonFile):
    file_name: ClassVar[str] = "run.json"
    always_written = ("kinds",)

    customer: str
    run_id: str
    data_uri: str | None = None
    data_sha256: str | None = None
    seed: int | None = None
    versions: dict[str, str] | None = None
    validation_report: str | None = None
    started_at: str | None = None
    kinds: dict[str, KindOutcome] = Field(default_factory=dict)
    total_s: float | None = None

    def record_outcome(self, kind: str, metadata: KindMetadata) -> None:
        self.kinds = {**self.kinds, kind: KindOutcome.of(metadata)}

    def kinds_with(self, *statuses: TrainingStatus) -> list[str]:
        return [kind for kind, outcome in self.kinds.items() if outcome.status in statuses]
