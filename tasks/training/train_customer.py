"""Train, evaluate, gate and export every requested kind for one customer into one run directory.

This is what `mme-factory train` runs; the onboarding flow calls the same steps as tasks.
"""

from __future__ import annotations

import logging
import resource
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from mme_factory.model_kinds import ModelKind
from mme_factory.naming import check_customer_id
from mme_factory.settings import Settings
from tasks.data.training_data import CustomerDataset, load_dataset, read_golden_set
from tasks.data.validate_data import check_customer_data
from tasks.training import classifier, embedding
from tasks.training.autocomplete.finetune import finetune_autocomplete
from tasks.training.export_torchscript import export_trained
from tasks.training.quality_gate import judge
from tasks.training.reproducibility import library_versions, seed_everything
from tasks.training.run_directory import RunDirectory

logger = logging.getLogger("mme_factory.training")


def _train_embedding(data: CustomerDataset, settings: Settings) -> Any:
    t = settings.training
    return embedding.finetune_embedding(data, t.embedding, t.held_out_fraction, t.seed)


def _train_classifier(data: CustomerDataset, settings: Settings) -> Any:
    t = settings.training
    return classifier.finetune_classifier(data, t.classifier, t.held_out_fraction, t.seed)


def _train_autocomplete(data: CustomerDataset, settings: Settings) -> Any:
    t = settings.training
    cache = settings.state_dir / "base-models"
    return finetune_autocomplete(data, t.autocomplete, t.held_out_fraction, t.seed, cache)


TRAINERS: dict[ModelKind, Callable[[CustomerDataset, Settings], Any]] = {
    ModelKind.EMBEDDING: _train_embedding,
    ModelKind.CLASSIFIER: _train_classifier,
    ModelKind.AUTOCOMPLETE: _train_autocomplete,
}
GOLDEN_EVALUATORS: dict[ModelKind, Callable[[Any, pd.DataFrame], dict]] = {
    ModelKind.EMBEDDING: embedding.evaluate_golden_set,
    ModelKind.CLASSIFIER: classifier.evaluate_golden_set,
}


SMOKE_INPUTS = 8


def smoke_inputs(kind: ModelKind, trained: Any, data: CustomerDataset) -> list[str]:
    """A few held-out inputs that smoke inference later sends through the endpoint."""
    if kind is ModelKind.CLASSIFIER:
        texts = list(trained.held_out["text"])
    elif kind is ModelKind.AUTOCOMPLETE:
        texts = list(trained.held_out["context"])
    elif data.pairs is not None and not data.pairs.empty:
        texts = list(data.pairs["query"])
    else:
        texts = list(data.intents["text"]) if data.intents is not None else []
    return [text for text in texts if text.strip()][:SMOKE_INPUTS]


def base_model_name(kind: ModelKind, settings: Settings) -> str:
    section = getattr(settings.training, kind.value)
    return section.base_model or "all-MiniLM-L6-v2"


def peak_memory_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@dataclass
class TrainingRun:
    run: RunDirectory
    record: dict[str, Any] = field(default_factory=dict)

    @property
    def outcomes(self) -> dict[str, dict[str, Any]]:
        return self.record["kinds"]

    @property
    def rejected(self) -> list[str]:
        return [kind for kind, o in self.outcomes.items() if o["status"] != "exported"]


def train_kind(
    kind: ModelKind,
    data: CustomerDataset,
    settings: Settings,
    run: RunDirectory,
    golden: pd.DataFrame | None,
) -> dict[str, Any]:
    """Train one kind; export it only if the gate accepts it. Returns its metadata."""
    started = time.monotonic()
    logger.info("%s: training from %s", kind, base_model_name(kind, settings))
    trained = TRAINERS[kind](data, settings)
    metrics = dict(trained.metrics)
    if golden is not None and kind in GOLDEN_EVALUATORS:
        metrics["golden_set"] = GOLDEN_EVALUATORS[kind](trained, golden)
        run.write_json(f"{kind}/golden_set.json", metrics["golden_set"])
    verdict = judge(kind, trained.metrics, settings.training)
    logger.info("%s", verdict.summary())
    timings = dict(trained.timings)
    metadata: dict[str, Any] = {
        "customer": run.customer,
        "run_id": run.run_id,
        "kind": str(kind),
        "base_model": base_model_name(kind, settings),
        "data_sha256": data.sha256,
        "seed": settings.training.seed,
        "versions": library_versions(),
        "metrics": metrics,
        "gate": verdict.to_dict(),
        "final_loss": trained.final_loss,
        "smoke_inputs": smoke_inputs(kind, trained, data),
    }
    if verdict.passed:
        exported_at = time.monotonic()
        metadata["export"] = export_trained(
            kind, trained, run.kind_dir(kind), settings.training.export_parity_tolerance
        )
        timings["export_s"] = time.monotonic() - exported_at
        metadata["status"] = "exported"
    else:
        metadata["status"] = "rejected"
        metadata["message"] = verdict.summary()
    timings["total_s"] = time.monotonic() - started
    timings["peak_rss_mb"] = peak_memory_mb()
    metadata["timings"] = timings
    run.write_json(f"{kind}/metadata.json", metadata)
    return metadata


def start_run(
    customer: str, data_uri: str, settings: Settings, validation_report: str
) -> tuple[CustomerDataset, TrainingRun]:
    """Load the data, seed everything and create the run directory with its run.json."""
    check_customer_id(customer)
    seed_everything(settings.training.seed, settings.training.torch_threads)
    data = load_dataset(data_uri, settings)
    run = RunDirectory.create(settings.runs_dir, customer, data.sha256)
    result = TrainingRun(
        run,
        {
            "customer": customer,
            "run_id": run.run_id,
            "data_uri": data.uri,
            "data_sha256": data.sha256,
            "seed": settings.training.seed,
            "versions": library_versions(),
            "validation_report": validation_report,
            "started_at": datetime.now(UTC).isoformat(),
            "kinds": {},
        },
    )
    run.write_json("run.json", result.record)
    return data, result


def record_outcome(result: TrainingRun, kind: ModelKind, metadata: dict[str, Any]) -> None:
    result.outcomes[str(kind)] = {
        key: metadata[key] for key in ("status", "metrics", "gate", "timings")
    }
    result.run.write_json("run.json", result.record)


def train_customer(
    customer: str,
    data_uri: str,
    settings: Settings,
    kinds: list[ModelKind] | None = None,
    golden_set: str | None = None,
) -> TrainingRun:
    """Validate, then train, gate and export each kind; the run directory records it all."""
    check_customer_id(customer)
    validation, report = check_customer_data(data_uri, settings, kinds)
    golden = read_golden_set(golden_set, settings) if golden_set else None
    data, result = start_run(customer, data_uri, settings, str(report))
    started = time.monotonic()
    for kind in validation.kinds_validated:
        record_outcome(result, kind, train_kind(kind, data, settings, result.run, golden))
    result.record["total_s"] = time.monotonic() - started
    result.run.write_json("run.json", result.record)
    return result
