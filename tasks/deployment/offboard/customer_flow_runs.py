"""The customer's onboarding flow runs on the Prefect server: cancelled and waited for.

An offboarding cancels every `onboard-customer` deployment run of the customer that is
scheduled, pending, running or paused (a queued run would otherwise start after the
offboarding), then waits until each is final, so that no run writes while the offboarding
deletes. A flow called directly (no deployment) has no worker to stop it; like any run, it
finds the tombstone under the customer lock and removes what it made. Without a Prefect server
(`PREFECT_API_URL` unset) there are no runs to find.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from uuid import UUID

from tasks.deployment.offboard.offboarding_report import ReportRow

ONBOARDING_FLOW = "onboard-customer"
POLL_S = 1.0
REASON = "the customer is being offboarded"

logger = logging.getLogger("mme_factory.offboard")


@dataclass(frozen=True)
class StoppedRun:
    run_id: str
    name: str
    state_before: str
    state_after: str


def prefect_api_url() -> str | None:
    from prefect.settings import get_current_settings

    url = get_current_settings().api.url
    return str(url) if url else None


def current_flow_run_id() -> str | None:
    from prefect.runtime import flow_run

    run_id = flow_run.id
    return str(run_id) if run_id else None


def stop_onboarding_runs(customer: str, wait_s: float) -> list[StoppedRun]:
    """Cancel the customer's unfinished onboarding runs; wait up to `wait_s` for them to end."""
    if prefect_api_url() is None:
        return []
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        FlowFilter,
        FlowFilterName,
        FlowRunFilter,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType
    from prefect.states import Cancelled, Cancelling

    unfinished = [
        StateType.SCHEDULED,
        StateType.PENDING,
        StateType.RUNNING,
        StateType.PAUSED,
        StateType.CANCELLING,
    ]
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(
            flow_filter=FlowFilter(name=FlowFilterName(any_=[ONBOARDING_FLOW])),
            flow_run_filter=FlowRunFilter(
                state=FlowRunFilterState(type=FlowRunFilterStateType(any_=unfinished))
            ),
        )
        own = current_flow_run_id()
        found = [
            run
            for run in runs
            if (run.parameters or {}).get("customer_id") == customer
            and run.deployment_id is not None
            and str(run.id) != own
        ]
        for run in found:
            running = run.state_type in (StateType.RUNNING, StateType.CANCELLING)
            state = Cancelling(message=REASON) if running else Cancelled(message=REASON)
            client.set_flow_run_state(run.id, state, force=True)
            logger.warning("cancelled onboarding run %s (%s) of %s", run.name, run.id, customer)
        deadline = time.monotonic() + wait_s
        final: dict[UUID, str] = {}
        while len(final) < len(found) and time.monotonic() < deadline:
            for run in found:
                state = client.read_flow_run(run.id).state
                if state is not None and state.is_final():
                    final[run.id] = state.type.value
            if len(final) < len(found):
                time.sleep(POLL_S)
    return [
        StoppedRun(
            str(run.id),
            run.name,
            run.state_type.value if run.state_type else "UNKNOWN",
            final.get(run.id, f"not finished after {wait_s:.0f} s"),
        )
        for run in found
    ]


def stopped_runs_rows(stopped: list[StoppedRun]) -> list[ReportRow]:
    if not stopped:
        return []
    items = [f"{r.name} ({r.run_id}): {r.state_before} -> {r.state_after}" for r in stopped]
    return [ReportRow("onboarding runs", "Prefect", len(items), "cancelled", items)]
