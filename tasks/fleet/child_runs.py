"""Start one onboarding flow run per customer, at most `concurrency` at once, and wait for all.

Each customer's onboarding is its own run of the `onboard-customer` deployment, so the work
pool's workers share them out (and a worker's crash loses one customer, not the fleet). The
runs are linked to the fleet run as subflows, so the UI shows them under it.
"""

from __future__ import annotations

import contextlib
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol
from uuid import UUID

from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import StateType
from prefect.deployments import run_deployment
from prefect.exceptions import ObjectNotFound
from prefect.states import Cancelling

from tasks.fleet.fleet_customers import FleetError

TIMED_OUT = "TIMED_OUT"
NOT_STARTED = "NOT_STARTED"


@dataclass(frozen=True)
class RunState:
    final: bool
    type: str  # Prefect's state type: COMPLETED, FAILED, CRASHED, CANCELLED, RUNNING, ...
    message: str


@dataclass(frozen=True)
class ChildResult:
    customer: str
    run_id: str | None
    state: str  # a final state type, TIMED_OUT or NOT_STARTED
    message: str

    @property
    def completed(self) -> bool:
        return self.state == StateType.COMPLETED


class OnboardingRuns(Protocol):
    """Where the customers' onboarding runs are started and watched."""

    def check_ready(self) -> None: ...
    def start(self, customer: str, parameters: dict[str, Any]) -> str: ...
    def state(self, run_id: str) -> RunState: ...
    def cancel(self, run_id: str, reason: str) -> None: ...


class DeploymentRuns:
    """Runs of a deployment on the Prefect API that the fleet run talks to."""

    def __init__(self, deployment: str) -> None:
        self.deployment = deployment

    def check_ready(self) -> None:
        """Fail at once, naming the fix, when the deployment is not on the Prefect server."""
        with get_client(sync_client=True) as client:
            try:
                client.read_deployment_by_name(self.deployment)
            except ObjectNotFound:
                raise FleetError(
                    f"deployment {self.deployment} does not exist on {client.api_url}: "
                    "deploy it (`prefect deploy --all` from the repository root, or "
                    "`mme-factory up` locally) or set fleet.deployment"
                ) from None

    def start(self, customer: str, parameters: dict[str, Any]) -> str:
        flow_run = run_deployment(
            self.deployment,
            parameters=parameters,
            flow_run_name=f"onboard-{customer}",
            timeout=0,
            as_subflow=True,
            tags=["onboard-fleet"],
        )
        return str(flow_run.id)

    def state(self, run_id: str) -> RunState:
        with get_client(sync_client=True) as client:
            state = client.read_flow_run(UUID(run_id)).state
        if state is None:
            return RunState(False, "PENDING", "")
        return RunState(state.is_final(), state.type.value, state.message or state.name)

    def cancel(self, run_id: str, reason: str) -> None:
        with get_client(sync_client=True) as client:
            client.set_flow_run_state(UUID(run_id), Cancelling(message=reason), force=True)


def run_children(
    requests: list[tuple[str, dict[str, Any]]],
    runs: OnboardingRuns,
    concurrency: int,
    poll_interval_s: float,
    timeout_s: float,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, ChildResult]:
    """Each customer's result; a run that fails, cannot start or times out stops no other."""
    waiting = deque(requests)
    running: dict[str, tuple[str, float]] = {}  # customer -> (run id, when it was started)
    results: dict[str, ChildResult] = {}
    while waiting or running:
        while waiting and len(running) < concurrency:
            customer, parameters = waiting.popleft()
            try:
                running[customer] = (runs.start(customer, parameters), clock())
            except Exception as error:  # a missing deployment or API error fails this customer
                results[customer] = ChildResult(customer, None, NOT_STARTED, _described(error))
                continue
            print(f"{customer}: started onboarding run {running[customer][0]}")
        if not running:
            continue
        sleep(poll_interval_s)
        for customer, (run_id, started) in list(running.items()):
            with contextlib.suppress(Exception):  # the API may blink: ask again next poll
                state = runs.state(run_id)
                if state.final:
                    results[customer] = ChildResult(customer, run_id, state.type, state.message)
                    del running[customer]
                    print(f"{customer}: {state.type} ({len(results)}/{len(requests)} done)")
                    continue
            if clock() - started > timeout_s:
                reason = f"not finished {timeout_s:.0f} s after it was started; cancelled"
                with contextlib.suppress(Exception):
                    runs.cancel(run_id, reason)
                results[customer] = ChildResult(customer, run_id, TIMED_OUT, reason)
                del running[customer]
    return results


def _described(error: Exception) -> str:
    return f"{type(error).__name__}: {error}"
