"""Prefect tasks over the training steps, with the artifacts a person reads in the UI."""

from __future__ import annotations

from typing import Any

import pandas as pd
from prefect import task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from mme_factory.model_kinds import ModelKind, describe
from mme_factory.settings import Settings
from tasks.data.training_data import CustomerDataset
from tasks.data.validate_data import validate_data_task
from tasks.training.quality_gate import QualityGateRejected
from tasks.training.train_customer import (
    TrainingRun,
    TrainingSteps,
    record_outcome,
    start_training_run,
    train_model,
)


def metrics_markdown(kind: str, metadata: dict[str, Any]) -> str:
    description = describe(kind)
    baseline, names = description.baseline, description.headline_metrics
    metrics = metadata["metrics"]
    lines = [
        f"# {kind}: {metadata['status']}",
        "",
        f"Base model `{metadata['base_model']}`, seed {metadata['seed']}, data "
        f"`{metadata['data_sha256'][:12]}`.",
        "",
        f"| metric | {baseline} | fine-tuned |",
        "| --- | ---: | ---: |",
    ]
    lines += [
        f"| {name} | {metrics[baseline][name]:.4f} | {metrics['fine_tuned'][name]:.4f} |"
        for name in names
    ]
    lines += [
        "",
        "## Quality gate",
        "",
        "| check | value | against | threshold | passed |",
        "| --- | ---: | --- | ---: | --- |",
    ]
    lines += [
        f"| {c['metric']} | {c['value']:.4f} | {c['against']} | {c['threshold']:.4f} | "
        f"{'yes' if c['passed'] else '**no**'} |"
        for c in metadata["gate"]["checks"]
    ]
    timings = metadata["timings"]
    lines += ["", "## Timings", "", " · ".join(f"{k} {v:.1f}" for k, v in timings.items())]
    per_intent = metrics["fine_tuned"].get("per_intent")
    if per_intent:
        lines += [
            "",
            "## Per intent (held out)",
            "",
            "| intent | precision | recall | F1 | n |",
            "| --- | ---: | ---: | ---: | ---: |",
        ]
        lines += [
            f"| {name} | {row['precision']:.3f} | {row['recall']:.3f} | {row['f1']:.3f} | "
            f"{row['support']} |"
            for name, row in per_intent.items()
        ]
    return "\n".join(lines) + "\n"


@task(name="start-training-run", cache_policy=NO_CACHE)
def start_training_run_task(
    customer: str, data_uri: str, settings: Settings, validation_report: str
) -> tuple[CustomerDataset, TrainingRun]:
    """Load the customer's data and create the run directory."""
    return start_training_run(customer, data_uri, settings, validation_report)


@task(name="train-model", task_run_name="train-{kind}", cache_policy=NO_CACHE)
def train_model_task(
    kind: ModelKind,
    data: CustomerDataset,
    settings: Settings,
    result: TrainingRun,
    golden: pd.DataFrame | None = None,
) -> dict[str, Any]:
    """Fine-tune, evaluate against the baseline, gate, and export one kind."""
    metadata = train_model(kind, data, settings, result.run, golden)
    record_outcome(result, kind, metadata)
    create_markdown_artifact(
        metrics_markdown(str(kind), metadata),
        key=f"training-{kind}",
        description=f"{kind} metrics and gate",
    )
    if metadata["status"] != "exported":
        raise QualityGateRejected(metadata["message"])
    return metadata


PREFECT_STEPS = TrainingSteps(
    validate=validate_data_task, start=start_training_run_task, train=train_model_task
)
