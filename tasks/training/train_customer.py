"""Train, evaluate, gate and export every requested kind for one customer into one run directory."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

import pandas as pd

from mme_factory.model_kinds import ModelKind, describe
from mme_factory.naming import check_customer_id
from mme_factory.records import (
    GateDecision,
    KindMetadata,
    RunRecord,
    TrainingFingerprint,
    TrainingStage,
    TrainingStatus,
)
from mme_factory.settings import Settings
from tasks.data.training_data import CustomerDataset, load_dataset, read_golden_set
from tasks.data.validate_data import ValidationSummary, validate_data
from tasks.training.champion import (
    contest_for,
    excluded_rows,
    live_champion,
    served_evidence,
    trained_on_newer,
)
from tasks.training.held_out import without_rows
from tasks.training.kind_training import TRAINING
from tasks.training.known_warnings import known_warnings_silenced
from tasks.training.progress import training_logger
from tasks.training.quality_gate import judge, summary
from tasks.training.reproducibility import library_versions, seed_everything
from tasks.training.run_directory import RunDirectory
from tasks.training.trained_model import TrainedModel
from tasks.training.training_record import KindRecord, TrainingRun

SMOKE_TEXTS = 8


def smoke_texts(texts: list[str]) -> list[str]:
    """A few non-blank held-out inputs that smoke inference later sends through the endpoint."""
    return [text for text in texts if text.strip()][:SMOKE_TEXTS]


def base_model_name(kind: ModelKind, settings: Settings) -> str:
    section = getattr(settings.training, kind.value)
    return section.base_model or "all-MiniLM-L6-v2"


def train_model(
    kind: ModelKind,
    data: CustomerDataset,
    settings: Settings,
    result: TrainingRun,
    golden: pd.DataFrame | None,
    fingerprint: TrainingFingerprint | None = None,
) -> KindMetadata:
    """Train, evaluate and gate one kind, then export what the gate chose to serve.

    `fingerprint` is what the kind trains from (data, settings, serving code): a tie with the
    live version goes to the new model only when it differs from the live version's.

    Each stage's results are in `<kind>/metadata.json` and run.json before the next stage
    starts; a stage that raises is recorded as failed there and raises `TrainingFailed`.
    Returns the kind's metadata.
    """
    log = training_logger()
    steps = TRAINING[kind]
    metadata = KindMetadata(
        customer=result.run.customer,
        run_id=result.run.run_id,
        kind=str(kind),
        base_model=base_model_name(kind, settings),
        data_sha256=data.sha256,
        seed=settings.training.seed,
        versions=library_versions(),
        status=TrainingStatus.TRAINING,
        timings={},
    )
    record = KindRecord(result, metadata)
    record.save(TrainingStatus.TRAINING)
    stage = TrainingStage.TRAIN
    try:
        champion = live_champion(settings, result.run.customer, kind)
        if champion is not None:
            log.info("%s: the live %s is the champion to beat", kind, champion.name)
        log.info("%s: training from %s", kind, metadata.base_model)
        with known_warnings_silenced():
            trained: TrainedModel = steps.train(
                without_rows(data, excluded_rows(champion)), settings
            )
        metadata.metrics = {group: dict(figures) for group, figures in trained.metrics.items()}
        metadata.final_loss = trained.final_loss
        if trained.steps is not None:
            metadata.steps = trained.steps
        record.timings.update(trained.timings)
        record.save(TrainingStatus.TRAINING)
        stage = TrainingStage.EVALUATE
        if golden is not None and steps.evaluate_golden_set is not None:
            golden_set = steps.evaluate_golden_set(trained, golden)
            metadata.metrics = {**metadata.metrics, "golden_set": golden_set}
            result.run.write_json(f"{kind}/golden_set.json", metadata.metrics["golden_set"])
        held = trained.held_out_scores
        if held is None:
            raise ValueError(f"{kind} training kept no held-out scores for the gate")
        contest = contest_for(
            kind, held, champion, lambda examples: steps.score_examples(trained, examples)
        )
        newer = trained_on_newer(champion, fingerprint)
        gate = judge(kind, trained.metrics, contest, settings.training, champion, newer)
        log.info("%s", summary(kind, gate))
        metadata.gate = gate
        metadata.smoke_inputs = smoke_texts(steps.smoke_texts(trained, data))
        if not gate.passed:
            metadata.message = summary(kind, gate)
            kept = gate.decision == GateDecision.CHAMPION
            record.save(TrainingStatus.CHAMPION_KEPT if kept else TrainingStatus.REJECTED)
            return metadata
        served = trained
        metadata.served = "fine_tuned"
        if gate.decision == GateDecision.BASELINE and steps.as_baseline is not None:
            served, metadata.served = steps.as_baseline(trained), describe(kind).baseline
        record.save(TrainingStatus.EXPORTING)
        stage = TrainingStage.EXPORT
        log.info("%s: exporting the %s model, checking parity with it", kind, metadata.served)
        exported_at = time.monotonic()
        try:
            with known_warnings_silenced():
                metadata.export = steps.export(served, result.run.kind_dir(kind), settings)
        finally:
            record.timings["export_s"] = time.monotonic() - exported_at
        log.info("%s: exported in %.1f s", kind, record.timings["export_s"])
        served_evidence(kind, held, gate.decision, data.sha256).write(record.directory)
        record.save(TrainingStatus.EXPORTED)
    except Exception as error:
        raise record.fail(stage, error) from error
    except BaseException as error:  # interrupted or cancelled: recorded, then it goes on as is
        record.fail(stage, error)
        raise
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
        RunRecord(
            customer=customer,
            run_id=run.run_id,
            data_uri=data.uri,
            data_sha256=data.sha256,
            seed=settings.training.seed,
            versions=library_versions(),
            validation_report=validation_report,
            started_at=datetime.now(UTC).isoformat(),
            kinds={},
        ),
    )
    result.save()
    return data, result


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
        [
            ModelKind,
            CustomerDataset,
            Settings,
            TrainingRun,
            pd.DataFrame | None,
            TrainingFingerprint | None,
        ],
        KindMetadata,
    ]


PLAIN_STEPS = TrainingSteps(validate=_validate, start=start_training_run, train=train_model)


def train_customer(
    customer: str,
    data_uri: str,
    settings: Settings,
    kinds: list[ModelKind] | None = None,
    golden_set: str | None = None,
    steps: TrainingSteps = PLAIN_STEPS,
    fingerprints: Mapping[str, TrainingFingerprint] | None = None,
) -> TrainingRun:
    """Validate, then train, gate and export each kind; the run directory records it all.

    `mme-factory train` runs the steps plainly; the onboarding flow runs the same sequence with
    each step as a Prefect task. A kind that fails stops the run, its failure recorded.
    """
    check_customer_id(customer)
    validation = steps.validate(data_uri, settings, kinds)
    golden = read_golden_set(golden_set, settings) if golden_set else None
    data, result = steps.start(customer, data_uri, settings, validation.report_path)
    started = time.monotonic()
    try:
        for kind in validation.kinds_validated:
            steps.train(kind, data, settings, result, golden, (fingerprints or {}).get(kind))
    finally:
        result.record.total_s = time.monotonic() - started
        result.save()
    return result
