"""`registry/<customer>.json`: which TargetModels serve each of a customer's kinds.

    {"customer": "acme", "updated_at": "...",
     "models":  {"<kind>": entry, ...},          what serves now
     "history": {"<kind>": [entry, ...]},        what served before, oldest first
     "retired": {"<kind>": [entry, ...]}}        what a rollback took out of service

Promote writes it; rollback points a kind back at its history; the serving path, warm-up,
fleet checks and the planner read it.
"""

from __future__ import annotations

from pydantic import ConfigDict, Field, JsonValue

from mme_factory.records.json_record import JsonRecord


class TrainingFingerprint(JsonRecord):
    """What a promoted model was trained from: data, training settings, serving code."""

    model_config = ConfigDict(frozen=True)

    data_sha256: str
    settings_sha256: str
    inference_code_version: str


class SmokeLatency(JsonRecord):
    cold_ms: float
    warm_ms: float


class ManifestEntry(JsonRecord):
    """One kind's promoted version: a TargetModel per role on the kind's endpoint."""

    endpoint: str | None = None
    version: int | None = None
    code_version: str | None = None  # the Python-backend code it was packaged with
    targets: dict[str, str] | None = None  # role (or kind) -> TargetModel
    sha256: dict[str, str] | None = None  # role (or kind) -> tarball sha256
    metrics: dict[str, dict[str, JsonValue]] | None = None
    run_id: str | None = None
    promoted_at: str | None = None
    smoke: dict[str, SmokeLatency | None] | None = None  # TargetModel -> smoke latency
    training_fingerprint: TrainingFingerprint | None = None
    gate_evidence: str | None = None  # store key of how it scored, example by example
    retired_at: str | None = None


class CustomerManifest(JsonRecord):
    always_written = ("models", "history", "retired")

    customer: str
    models: dict[str, ManifestEntry] = Field(default_factory=dict)
    history: dict[str, list[ManifestEntry]] = Field(default_factory=dict)
    retired: dict[str, list[ManifestEntry]] = Field(default_factory=dict)
    updated_at: str | None = None
    fence: int | None = None  # the lock generation of the run that wrote it

    def named_entries(self) -> list[ManifestEntry]:
        """Every entry it names: current, in a kind's history, or retired by a rollback."""
        entries = list(self.models.values())
        for section in (self.history, self.retired):
            for kept in section.values():
                entries += kept
        return entries

    def highest_named_version(self) -> int:
        """The highest version any of its entries names; 0 when none does."""
        return max((entry.version or 0 for entry in self.named_entries()), default=0)
