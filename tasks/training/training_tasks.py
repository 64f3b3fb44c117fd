"""Prefect tasks over the training steps, with the artifacts a person reads in the UI."""

from __future__ import annotations

import pandas as pd
from prefect import task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from mme_factory.model_kinds import ModelKind, describe
from mme_factory.records import (
    GateDecision,
    GateRecord,
    KindMetadata,
    Metrics,
    TrainingFingerprint,
    TrainingStatus,
)
from mme_factory.settings import Settings
from tasks.data.training_data import CustomerDataset
from tasks.data.validate_data import validate_data_task
from tasks.training.quality_gate import QualityGateRejected
from tasks.training.train_customer import (
    TrainingRun,
    TrainingSteps,
    start_training_run,
    train_model,
)


def metrics_markdown(metadata: KindMetadata) -> str:
    """The kind's outcome as far as it got: a failed kind shows its failure and what it learnt."""
    kind = metadata.kind
    lines = [f"# {kind}: {metadata.status}", ""]
    failure = metadata.failure
    if failure:
        lines += [f"**{failure.stage} failed**: `{failure.error}`: {failure.message}", ""]
    lines += [
        f"Base model `{metadata.base_model}`, seed {metadata.seed}, data "
        f"`{metadata.data_sha256[:12]}`.",
    ]
    if metadata.metrics is not None:
        lines += _metrics_lines(kind, metadata.metrics)
    if metadata.gate is not None:
        lines += _gate_lines(metadata.gate)
    lines += [
        "",
        "## Timings",
        "",
        " · ".join(f"{k} {v:.1f}" for k, v in metadata.timings.items()),
    ]
    if metadata.steps:
        steps = metadata.steps.to_dict()
        lines += ["", "## Steps", "", " · ".join(f"{k} {v}" for k, v in steps.items())]
    per_intent = (metadata.metrics or {}).get("fine_tuned", {}).get("per_intent")
    if isinstance(per_intent, dict) and per_intent:
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
            if isinstance(row, dict)
        ]
    return "\n".join(lines) + "\n"


def _metrics_lines(kind: str, metrics: Metrics) -> list[str]:
    description = describe(kind)
    baseline, names = description.baseline, description.headline_metrics
    lines = ["", f"| metric | {baseline} | fine-tuned |", "| --- | ---: | ---: |"]
    return lines + [
        f"| {name} | {metrics[baseline][name]:.4f} | {metrics['fine_tuned'][name]:.4f} |"
        for name in names
    ]


def _gate_lines(gate: GateRecord) -> list[str]:
    lines = ["", "## Quality gate", "", f"**{GATE_HEADINGS[gate.decision]}**: {gate.reason}"]
    comparison = gate.comparison
    if comparison is not None:
        lines += [
            "",
            f"| {comparison.metric} | champion ({comparison.champion}) | challenger "
            f"(fine-tuned) | difference | {comparison.confidence:.0%} CI | p (worse) | "
            "p (better) | examples | outcome |",
            "| --- | ---: | ---: | ---: | --- | ---: | ---: | ---: | --- |",
            f"| {comparison.test} | {comparison.champion_value:.4f} | "
            f"{comparison.challenger_value:.4f} | {comparison.difference:+.4f} | "
            f"{comparison.ci_low:+.4f} to {comparison.ci_high:+.4f} | {comparison.p_worse:.3g} | "
            f"{comparison.p_better:.3g} | {comparison.examples} | {comparison.outcome} |",
        ]
    if gate.minimums:
        lines += [
            "",
            "| model | metric | value | minimum | reached |",
            "| --- | --- | ---: | ---: | --- |",
        ]
        lines += [
            f"| {c.model} | {c.metric} | {c.value:.4f} | {c.minimum:.4f} | "
            f"{'yes' if c.passed else '**no**'} |"
            for c in gate.minimums
        ]
    return lines


GATE_HEADINGS = {
    GateDecision.CHALLENGER: "The fine-tuned model is served",
    GateDecision.BASELINE: "The baseline model is served instead of the fine-tuned one",
    GateDecision.CHAMPION: "The live version stays; nothing new is served",
    GateDecision.REJECTED: "Rejected; nothing is served",
}


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
    fingerprint: TrainingFingerprint | None = None,
) -> KindMetadata:
    """Fine-tune, meet the champion at the gate, and export what the gate serves."""
    try:
        metadata = train_model(kind, data, settings, result, golden, fingerprint)
    finally:
        # Also when a stage raised: the artifact shows what the kind learnt and why it failed.
        create_markdown_artifact(
            metrics_markdown(result.run.metadata(kind)),
            key=f"training-{kind}",
            description=f"{kind} metrics and gate",
        )
    if metadata.status == TrainingStatus.REJECTED:
        raise QualityGateRejected(metadata.message or f"{kind}: {metadata.status}")
    return metadata


PREFECT_STEPS = TrainingSteps(
    validate=validate_data_task, start=start_training_run_task, train=train_model_task
)
