"""The records stages hand each other as JSON files, one typed model per file.

<run>/run.json                  RunRecord        the run and each kind's outcome
<run>/<kind>/metadata.json      KindMetadata     one kind's training, stage by stage
<export dir>/export.json        ExportRecord     an exported model, read by the packager
registry/<customer>.json        CustomerManifest what serves each kind, and what served
                                Tombstone        or: the customer was offboarded
"""

from mme_factory.records.customer_manifest import (
    CustomerManifest,
    ManifestEntry,
    SmokeLatency,
    TrainingFingerprint,
)
from mme_factory.records.export_record import (
    AnyExport,
    AutocompleteExport,
    ClassifierExport,
    EmbeddingExport,
    ExportRecord,
    KindExport,
)
from mme_factory.records.gate_evidence import GateEvidence
from mme_factory.records.gate_record import (
    ComparisonRecord,
    GateDecision,
    GateRecord,
    MinimumCheckRecord,
)
from mme_factory.records.json_record import JsonFile, JsonRecord, UnreadableRecord, load_json
from mme_factory.records.kind_metadata import FailureRecord, KindMetadata, Metrics, StepsSummary
from mme_factory.records.run_record import KindOutcome, RunRecord
from mme_factory.records.tombstone import Tombstone
from mme_factory.records.training_status import TrainingStage, TrainingStatus

__all__ = [
    "AnyExport",
    "AutocompleteExport",
    "ClassifierExport",
    "ComparisonRecord",
    "CustomerManifest",
    "EmbeddingExport",
    "ExportRecord",
    "FailureRecord",
    "GateDecision",
    "GateEvidence",
    "GateRecord",
    "JsonFile",
    "JsonRecord",
    "KindExport",
    "KindMetadata",
    "KindOutcome",
    "ManifestEntry",
    "Metrics",
    "MinimumCheckRecord",
    "RunRecord",
    "SmokeLatency",
    "StepsSummary",
    "Tombstone",
    "TrainingFingerprint",
    "TrainingStage",
    "TrainingStatus",
    "UnreadableRecord",
    "load_json",
]
