"""Train, evaluate, gate and export every requested kind for one customer into one run directory."""

from __future__ import annotations

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
from tasks.data.validate_data import ValidationSummary, validate_data
from tasks.training.kind_training import TRAINING
from tasks.training.known_warnings import known_warnings_silenced
from tasks.training.progress import training_logger
from tasks.training.quality_gate import judge
from tasks.training.reproducibility import library_versions, seed_everything
from tasks.training.run_directory import RunDirectory

SMOKE_TEXTS = 8


def smoke_texts(texts: list[str]) -> list[str]:
    """A few non-blank held-out inputs that smoke inference later sends through the endpoint."""
    return [text for text in texts if text.strip()][:SMOKE_TEXTS]


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


def train_model(
    kind: ModelKind,
    data: CustomerDataset,
    settings: Settings,
    run: RunDirectory,
    golden: pd.DataFrame | None,
) -> dict[str, Any]:
    """Train one kind; export it only if the gate accepts it. Returns its metadata."""
    started = time.monotonic()
    log = training_logger()
    log.info("%s: training from %s", kind, base_model_name(kind, settings))
    steps = TRAINING[kind]
    with known_warnings_silenced():
        trained = steps.train(data, settings)
    metrics = dict(trained.metrics)
    if golden is not None and steps.evaluate_golden_set is not None:
        metrics["golden_set"] = steps.evaluate_golden_set(trained, golden)
        run.write_json(f"{kind}/golden_set.json", metrics["golden_set"])
    verdict = judge(kind, trained.metrics, settings.training)
    log.info("%s", verdict.summary())
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
        "smoke_inputs": smoke_texts(steps.smoke_texts(trained, data)),
    }
    if verdict.passed:
        exported_at = time.monotonic()
        log.info("%s: exporting and checking parity with the trained model", kind)
        with known_warnings_silenced():
            metadata["export"] = steps.export(
                trained, run.kind_dir(kind), settings.training.export_parity_tolerance
            )
        timings["export_s"] = time.monotonic() - exported_at
        log.info("%s: exported in %.1f s", kind, timings["export_s"])
        metadata["status"] = "exported"
    else:
        metadata["status"] = "rejected"
        metadata["message"] = verdict.summary()
    timings["total_s"] = time.monotonic() - started
    timings["peak_rss_mb"] = peak_memory_mb()
    metadata["timings"] = timings
    run.write_json(f"{kind}/metadata.json", metadata)
    return metadata


def start_training_run(
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


def train_and_record(
    kind: ModelKind,
    data: CustomerDataset,
    settings: Settings,
    result: TrainingRun,
    golden: pd.DataFrame | None,
) -> dict[str, Any]:
    """Train one kind and record its outcome in run.json, accepted or not."""
    metadata = train_model(kind, data, settings, result.run, golden)
    record_outcome(result, kind, metadata)
    return metadata


def _validate(
    data_uri: str, settings: Settings, kinds: list[ModelKind] | None
) -> ValidationSummary:
    return validate_data(data_uri, settings, kinds)[0]


@dataclass(frozen=True)
class TrainingSteps:
    """How each step of the training sequence runs: as plain calls, or as Prefect tasks."""

    validate: Callable[[str, Settings, list[ModelKind] | None], ValidationSummary]
    start: Callable[[str, str, Settings, str], tuple[CustomerDataset, TrainingRun]]
    train: Callable[
        [ModelKind, CustomerDataset, Settings, TrainingRun, pd.DataFrame | None], dict[str, Any]
    ]


PLAIN_STEPS = TrainingSteps(validate=_validate, start=start_training_run, train=train_and_record)


def train_customer(
    customer: str,
    data_uri: str,
    settings: Settings,
    kinds: list[ModelKind] | None = None,
    golden_set: str | None = None,
    steps: TrainingSteps = PLAIN_STEPS,
) -> TrainingRun:
    """Validate, then train, gate and export each kind; the run directory records it all.

    `mme-factory train` runs the steps plainly; the onboarding flow runs the same sequence with
    each step as a Prefect task.
    """
    check_customer_id(customer)
    validation = steps.validate(data_uri, settings, kinds)
    golden = read_golden_set(golden_set, settings) if golden_set else None
    data, result = steps.start(customer, data_uri, settings, validation.report_path)
    started = time.monotonic()
    for kind in validation.kinds_validated:
        steps.train(kind, data, settings, result, golden)
    result.record["total_s"] = time.monotonic() - started
    result.run.write_json("run.json", result.record)
    return result
