"""Every customer's outcome of a fleet run: promoted (which version), kept, skipped or failed.

A promoted version is read from the manifest the customer's run wrote; a failure's reason is
the final state message of its run (the exception that stopped it).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import StrEnum

from prefect import task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE

from mme_factory.errors import MmeFactoryError
from mme_factory.manifest import read_manifest
from mme_factory.settings import Settings
from mme_factory.store import open_store
from tasks.fleet.child_runs import ChildResult
from tasks.fleet.fleet_customers import FleetError
from tasks.fleet.retraining_check import RetrainingCheck, RetrainingDecision

ARTIFACT_KEY = "fleet-outcomes"


class FleetOutcome(StrEnum):
    PROMOTED = "promoted"
    KEPT = "kept"  # the run completed and the quality gate kept every live version
    SKIPPED = "skipped"
    FAILED = "failed"


@dataclass(frozen=True)
class CustomerOutcome:
    customer: str
    outcome: FleetOutcome
    reason: str
    version: int | None = None
    flow_run_id: str | None = None

    @property
    def summary(self) -> str:
        return f"{self.outcome}: {self.reason}"

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def promoted_version(settings: Settings, customer: str, kinds: tuple[str, ...]) -> int:
    """The version the manifest now serves for the kinds the run trained (one per run)."""
    models = read_manifest(open_store(settings.store, settings), customer).models
    versions = [
        version
        for kind in kinds
        if kind in models and (version := models[kind].version) is not None
    ]
    if not versions:
        raise MmeFactoryError(f"the manifest serves none of {', '.join(kinds)}")
    return max(versions)


def outcome_of(
    check: RetrainingCheck, result: ChildResult | None, settings: Settings
) -> CustomerOutcome:
    customer = check.customer.customer_id
    if check.verdict == RetrainingDecision.SKIP:
        return CustomerOutcome(customer, FleetOutcome.SKIPPED, check.reason)
    if check.verdict == RetrainingDecision.FAILED or result is None:
        return CustomerOutcome(customer, FleetOutcome.FAILED, check.reason)
    if not result.completed:
        reason = f"{result.state}: {result.message}" if result.message else result.state
        return CustomerOutcome(customer, FleetOutcome.FAILED, reason, flow_run_id=result.run_id)
    try:
        version = promoted_version(settings, customer, check.kinds)
    except MmeFactoryError as error:
        reason = f"its run completed but its manifest cannot tell the version: {error}"
        return CustomerOutcome(customer, FleetOutcome.FAILED, reason, flow_run_id=result.run_id)
    if version == check.live_version:
        reason = f"{check.reason}; the quality gate kept the live versions (v{version})"
        return CustomerOutcome(customer, FleetOutcome.KEPT, reason, version, result.run_id)
    return CustomerOutcome(customer, FleetOutcome.PROMOTED, check.reason, version, result.run_id)


def fleet_outcomes(
    checks: list[RetrainingCheck], results: dict[str, ChildResult], settings: Settings
) -> list[CustomerOutcome]:
    return [outcome_of(c, results.get(c.customer.customer_id), settings) for c in checks]


def outcome_table(outcomes: list[CustomerOutcome]) -> list[dict[str, object]]:
    return [
        {
            "customer": o.customer,
            "outcome": o.outcome,
            "version": f"v{o.version}" if o.version is not None else "",
            "why": o.reason,
            "flow run": o.flow_run_id or "",
        }
        for o in outcomes
    ]


def publish_outcomes(outcomes: list[CustomerOutcome]) -> None:
    """The table artifact of every customer's outcome, and a one-line count in the log."""
    counts = {kind: sum(o.outcome == kind for o in outcomes) for kind in FleetOutcome}
    description = ", ".join(f"{n} {kind}" for kind, n in counts.items())
    create_table_artifact(outcome_table(outcomes), key=ARTIFACT_KEY, description=description)
    print(f"fleet: {description}")


def fail_if_any_failed(outcomes: list[CustomerOutcome]) -> list[dict[str, object]]:
    """Every outcome as a dict; a FleetError naming each failed customer and why, if any."""
    failed = [o for o in outcomes if o.outcome == FleetOutcome.FAILED]
    if failed:
        raise FleetError(
            f"{len(failed)} of {len(outcomes)} customers failed (see the {ARTIFACT_KEY} table): "
            + "; ".join(f"{o.customer}: {o.reason}" for o in failed)
        )
    return [o.to_dict() for o in outcomes]


@task(name="report-fleet", cache_policy=NO_CACHE)
def report_fleet_task(
    checks: list[RetrainingCheck], results: dict[str, ChildResult], settings: Settings
) -> list[CustomerOutcome]:
    """Read every customer's outcome and publish them as one table."""
    outcomes = fleet_outcomes(checks, results, settings)
    publish_outcomes(outcomes)
    return outcomes
