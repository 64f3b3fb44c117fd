"""Onboard the customers that need it, each in its own run of the onboarding deployment."""

from __future__ import annotations

from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from mme_factory.model_kinds import ModelKind
from mme_factory.settings import Settings
from tasks.fleet.child_runs import ChildResult, DeploymentRuns, OnboardingRuns, run_children
from tasks.fleet.retraining_check import RetrainingCheck, RetrainingDecision


def onboarding_parameters(
    check: RetrainingCheck,
    kinds: list[ModelKind] | None,
    settings_file: str | None,
    overrides: dict[str, str] | None,
) -> dict[str, Any]:
    """The `onboard-customer` parameters; those left out keep the deployment's defaults."""
    parameters: dict[str, Any] = {
        "customer_id": check.customer.customer_id,
        "data_uri": check.customer.data_uri,
    }
    if kinds:
        parameters["kinds"] = [str(kind) for kind in kinds]
    if settings_file:
        parameters["settings_file"] = settings_file
    if overrides:
        parameters["overrides"] = dict(overrides)
    return parameters


def onboard_customers(
    checks: list[RetrainingCheck],
    settings: Settings,
    concurrency: int,
    runs: OnboardingRuns,
    kinds: list[ModelKind] | None = None,
    settings_file: str | None = None,
    overrides: dict[str, str] | None = None,
) -> dict[str, ChildResult]:
    """Start a run for every customer whose check says retrain; wait for all of them."""
    requests = [
        (c.customer.customer_id, onboarding_parameters(c, kinds, settings_file, overrides))
        for c in checks
        if c.verdict == RetrainingDecision.RETRAIN
    ]
    if not requests:
        return {}
    runs.check_ready()
    fleet = settings.fleet
    return run_children(requests, runs, concurrency, fleet.poll_interval_s, fleet.run_timeout_s)


@task(name="onboard-customers", cache_policy=NO_CACHE)
def onboard_customers_task(
    checks: list[RetrainingCheck],
    settings: Settings,
    concurrency: int,
    kinds: list[ModelKind] | None = None,
    settings_file: str | None = None,
    overrides: dict[str, str] | None = None,
) -> dict[str, ChildResult]:
    """One `onboard-customer` run per customer to retrain, at most `concurrency` at a time."""
    runs = DeploymentRuns(settings.fleet.deployment)
    return onboard_customers(checks, settings, concurrency, runs, kinds, settings_file, overrides)
