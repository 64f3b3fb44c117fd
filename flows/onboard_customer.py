"""The `onboard-customer` flow: validate, fine-tune, package, register, smoke-test, promote."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow
from prefect.artifacts import create_markdown_artifact

from flows.flow_settings import flow_settings
from mme_factory.manifest import CustomerOffboarded, read_manifest, refuse_if_offboarded
from mme_factory.model_kinds import ModelKind
from mme_factory.records import GateDecision
from mme_factory.settings import Settings
from mme_factory.store import open_store
from tasks.deployment import (
    assign_version_task,
    clean_up_if_offboarded,
    customer_lock,
    discard_if_offboarded,
    export_dir_for,
    keep_gate_evidence,
    manifest_entries,
    promote_task,
    register_mme_task,
    report_smoke_results,
    smoke_inference_task,
    smoke_inputs_for,
    training_fingerprints_task,
    withdraw_unpromoted_task,
    withdraw_uploads,
)
from tasks.packaging import package_triton_task
from tasks.training import PREFECT_STEPS, TrainingRun, train_customer


@flow(name="onboard-customer", log_prints=True)
def onboard_customer(
    customer_id: str,
    data_uri: str,
    kinds: list[ModelKind] | None = None,
    test_data: str | None = None,
    settings_file: str | None = None,
    overrides: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Onboard one customer: every model kind its data supports, from data to a promoted model.

    An offboarded customer is refused before any work, and again under the customer lock after
    training (it may have been offboarded meanwhile): nothing of the run is left then.
    """
    settings = flow_settings(settings_file, overrides)
    store = open_store(settings.store, settings)
    refuse_if_offboarded(store, customer_id)
    fingerprints = training_fingerprints_task(data_uri, settings, kinds)
    training = train_customer(
        customer_id, data_uri, settings, kinds, test_data, PREFECT_STEPS, fingerprints
    )

    run = training.run
    registrations = []
    sagemaker = settings.sagemaker
    with customer_lock(store, customer_id, sagemaker.lock_wait_s, sagemaker.lock_stale_s) as lease:
        discard_if_offboarded(store, customer_id, Path(run.path))
        if not training.exported:
            return champions_kept(customer_id, training, settings)
        try:
            withdraw_unpromoted_task(settings, customer_id, lease.fence)
            version = assign_version_task(settings, customer_id, lease.fence)
            packages = package_triton_task(Path(run.path), settings, version=f"v{version}")
            for package in packages.packages:
                lease.ensure_held()
                registrations.append(register_mme_task(package, version, settings))
            smoke = [
                smoke_inference_task(r, export_dir_for(run, r), smoke_inputs_for(run, r), settings)
                for r in registrations
            ]
            report_smoke_results(smoke)
            lease.ensure_held()
            evidence = keep_gate_evidence(registrations, run, settings)
            manifest = promote_task(
                settings,
                customer_id,
                manifest_entries(registrations, smoke, run, evidence),
                fingerprints,
                lease.fence,
            )
        except Exception as error:
            withdraw_uploads(registrations, settings)
            offboarded = clean_up_if_offboarded(store, customer_id, Path(run.path))
            if offboarded is not None:
                raise CustomerOffboarded(customer_id, offboarded) from error
            raise
    summary = {
        "customer": customer_id,
        "run_id": run.run_id,
        "version": version,
        "models": [r.to_dict() for r in registrations],
        "smoke": [s.to_dict() for s in smoke],
        "manifest": manifest.to_dict(),
        "champions_kept": training.champions_kept,
    }
    create_markdown_artifact(onboarding_markdown(summary, training), key="onboarding-summary")
    return summary


def champions_kept(customer: str, training: TrainingRun, settings: Settings) -> dict[str, Any]:
    """The summary of a run whose gate kept every live version: nothing to package."""
    manifest = read_manifest(open_store(settings.store, settings), customer)
    summary = {
        "customer": customer,
        "run_id": training.run.run_id,
        "version": None,
        "models": [],
        "smoke": [],
        "manifest": manifest.to_dict(),
        "champions_kept": training.champions_kept,
    }
    lines = [f"# {customer}: nothing new promoted; the live versions stay", ""]
    lines += gate_lines(training)
    create_markdown_artifact("\n".join(lines) + "\n", key="onboarding-summary")
    return summary


def gate_lines(training: TrainingRun) -> list[str]:
    """One line per kind whose gate did not simply serve its fine-tuned model."""
    lines = []
    for kind, outcome in training.outcomes.items():
        gate = outcome.gate
        if gate is not None and gate.decision != GateDecision.CHALLENGER:
            lines.append(f"- **{kind}**: {gate.reason}")
    return lines


def onboarding_markdown(summary: dict[str, Any], training: TrainingRun) -> str:
    lines = [
        f"# {summary['customer']}: version v{summary['version']} promoted",
        "",
        "| kind | endpoint | TargetModel | cold ms | warm ms |",
        "| --- | --- | --- | ---: | ---: |",
    ]
    for model, smoke in zip(summary["models"], summary["smoke"], strict=True):
        lines.append(
            f"| {model['kind']} | {model['endpoint']} | `{model['target_model']}` | "
            f"{smoke['cold_ms']:.0f} | {smoke['warm_ms']:.0f} |"
        )
    notes = gate_lines(training)
    if notes:
        lines += ["", "Quality gate:", "", *notes]
    return "\n".join(lines) + "\n"
