"""End to end on the local stack: onboard-fleet starts onboard-customer runs on a process pool.

A real Prefect server (the test harness), a real process worker picking up the runs, a real
mme_local process with Triton behind it, and tiny classifiers trained from the sample customer
cut small.
"""

from __future__ import annotations

import json

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterFlowRunId,
    DeploymentFilter,
    DeploymentFilterName,
)
from prefect.states import State

from flows.onboard_fleet import onboard_fleet
from mme_factory.manifest import promoted_fingerprint, read_manifest
from mme_factory.settings import load_settings
from mme_factory.store import open_store
from tasks.fleet import UNCHANGED, FleetCustomer
from test_support.process_worker import ProcessWorker, create_process_pool, deploy_onboarding
from test_support.tiny_stack import small_customer, tiny_stack

pytestmark = pytest.mark.integration

POOL = "fleet-test"
KINDS = ["classifier"]


@pytest.fixture(scope="module")
def fleet_stack(tmp_path_factory, prefect_api_url):
    root = tmp_path_factory.mktemp("fleet")
    environ, service = tiny_stack(root, "fleet", {"MME_FACTORY_FLEET__POLL_INTERVAL_S": "1"})
    service.start(timeout_s=60)
    patch = pytest.MonkeyPatch()
    for name, value in environ.items():
        patch.setenv(name, value)
    worker = None
    try:
        create_process_pool(POOL)
        deploy_onboarding(POOL)
        worker_environ = {**environ, "PREFECT_API_URL": prefect_api_url}
        worker = ProcessWorker(POOL, worker_environ, root / "worker.log", limit=3)
        worker.start()
        yield root, load_settings()
    finally:
        if worker is not None:
            worker.stop()
        patch.undo()
        service.stop()


@pytest.fixture(scope="module")
def customers(fleet_stack):
    root, _ = fleet_stack
    good = [small_customer(root / "customers" / name) for name in ("alpha", "beta")]
    broken = small_customer(root / "elsewhere" / "broken")
    (broken / "intents.csv").write_text("text,intent\nhello,greeting\n", encoding="utf-8")
    return [FleetCustomer(customer_id=path.name, data_uri=str(path)) for path in [*good, broken]]


def fleet_run(**parameters: object) -> tuple[State, dict[str, dict[str, str]]]:
    """The fleet run's final state and its outcome table, read back from the Prefect API."""
    state = onboard_fleet(kinds=KINDS, **parameters, return_state=True)
    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(
                flow_run_id=ArtifactFilterFlowRunId(any_=[state.state_details.flow_run_id])
            )
        )
    (table,) = [a.data for a in artifacts if a.key == "fleet-outcomes"]
    rows = json.loads(table) if isinstance(table, str) else table
    return state, {row["customer"]: row for row in rows}


def onboarding_runs() -> int:
    with get_client(sync_client=True) as client:
        return len(
            client.read_flow_runs(
                deployment_filter=DeploymentFilter(
                    name=DeploymentFilterName(any_=["onboard-customer"])
                )
            )
        )


@pytest.fixture(scope="module")
def first_run(fleet_stack, customers):
    return fleet_run(customers=customers)


def test_a_failing_customer_fails_the_fleet_but_not_the_others(fleet_stack, first_run):
    _, settings = fleet_stack
    state, rows = first_run
    assert state.is_failed()
    assert {c: (r["outcome"], r["version"]) for c, r in rows.items()} == {
        "alpha": ("promoted", "v1"),
        "beta": ("promoted", "v1"),
        "broken": ("failed", ""),
    }
    assert "ValidationFailed" in rows["broken"]["why"]
    assert "examples" in rows["broken"]["why"]  # the validation message, not just a state name
    store = open_store(settings.store, settings)
    for customer in ("alpha", "beta"):
        fingerprint = promoted_fingerprint(read_manifest(store, customer), "classifier")
        assert fingerprint is not None and fingerprint.inference_code_version.startswith("v")


def test_a_rerun_over_the_prefix_skips_every_customer_without_starting_runs(fleet_stack, first_run):
    root, _ = fleet_stack
    started = onboarding_runs()
    state, rows = fleet_run(data_prefix=str(root / "customers"))
    assert state.is_completed()
    assert {c: f"{r['outcome']}: {r['why']}" for c, r in rows.items()} == {
        "alpha": f"skipped: {UNCHANGED}",
        "beta": f"skipped: {UNCHANGED}",
    }
    assert onboarding_runs() == started


def test_force_retrains_an_unchanged_customer_and_the_gate_keeps_v1(
    fleet_stack, customers, first_run
):
    # Retrained from the same data, settings and code, a new model that only ties with v1 is
    # not served: the quality gate keeps the live version.
    state, rows = fleet_run(customers=customers[:1], force=True)
    assert state.is_completed()
    assert (rows["alpha"]["outcome"], rows["alpha"]["version"], rows["alpha"]["why"]) == (
        "kept",
        "v1",
        "forced; the quality gate kept the live versions (v1)",
    )
