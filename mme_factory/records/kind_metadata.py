"""`<run>/<kind>/metadata.json`: what one kind's training has learnt, rewritten at every stage.

training     started; once trained: metrics, final loss, steps, timings
exporting    evaluated; the gate chose a model of this run (`served`); export under way
exported     the export passed its parity check (the only status packaging picks up)
rejected     no candidate passed the gate and nothing is live; nothing exported
champion_kept the gate kept the live version; nothing exported
failed       a stage raised: `failure` names the stage (train, evaluate, export),
             the error type and its message; what earlier stages learnt is kept
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import JsonValue

from mme_factory.records.export_record import KindExport
from mme_factory.records.gate_record import GateRecord
from mme_factory.records.json_record import JsonFile, JsonRecord
from mme_factory.records.training_status import TrainingStage, TrainingStatus

# Metric groups ("base", "fine_tuned", "golden_set", ...) of named figures, tables included.
Metrics = dict[str, dict[str, JsonValue]]


class StepsSummary(JsonRecord):
    """The optimiser steps planned and run within the kind's time budget."""

    planned: int
    run: int
    budget_s: float | None
    stopped_by_budget: bool
    stopped_because: str | None


class FailureRecord(JsonRecord):
    stage: TrainingStage
    error: str  # the exception's type
    message: str


class KindMetadata(JsonFile):
    file_name: ClassVar[str] = "metadata.json"

    customer: str
    run_id: str
    kind: str
    base_model: str
    data_sha256: str
    seed: int
    versions: dict[str, str]
    status: TrainingStatus
    timings: dict[str, float]
    metrics: Metrics | None = None
    final_loss: float | None = None
    steps: StepsSummary | None = None
    gate: GateRecord | None = None
    smoke_inputs: list[str] | None = None  # held-out texts smoke inference sends
    message: str | None = None  # why the gate rejected the model
    served: str | None = None  # the exported candidate: "fine_tuned" or the baseline's name
    export: KindExport | None = None
    failure: FailureRecord | None = None
