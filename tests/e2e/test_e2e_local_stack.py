"""End to end on the local stack: onboard-customer then warmup, with tiny models.

`mme-factory up` starts the stack (a real mme_local with Triton behind it, a Prefect server,
the process pool's worker) with settings for tiny models and a local store; the deployments run
on the worker as `make demo` runs them. The sample customer is cut small so that tiny models
train in seconds.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from prefect.client.schemas.objects import FlowRun
from prefect.deployments import run_deployment
from prefect.settings import PREFECT_API_URL, temporary_settings

from cli.main import main
from deployments.local_stack import prefect_api_url
from deployments.work_pools import LOCAL_POOL
from flows.onboard_customer import onboard_customer
from flows.warmup import WarmupFailed, warmup
from mme_factory.settings import load_settings
from mme_factory.store import open_store
from test_support.paths import ACME
from test_support.servers import free_port
from test_support.tiny_stack import shuffled_intents, small_customer, tiny_stack

# The first test also waits for `mme-factory up` and the onboarding run on the worker.
pytestmark = [pytest.mark.integration, pytest.mark.timeout(1200)]


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    environ, service = tiny_stack(tmp_path_factory.mktemp("e2e"), "e2e")
    prefect_port = free_port()
    environ |= {
        "MME_FACTORY_MME_LOCAL__PORT": str(service.port),
        "MME_FACTORY_PREFECT__PORT": str(prefect_port),
    }
    patch = pytest.MonkeyPatch()
    for name, value in environ.items():
        patch.setenv(name, value)
    try:
        assert main(["up"]) == 0
        with temporary_settings(updates={PREFECT_API_URL: prefect_api_url(prefect_port)}):
            yield load_settings()
    finally:
        main(["down"])
        patch.undo()


def run_on_worker(settings, name: str, parameters: dict, timeout_s: float) -> FlowRun:
    """Run a deployment and check that the stack's worker ran it, in a process of its own."""
    flow_run = run_deployment(name, parameters=parameters, timeout=timeout_s, poll_interval=2)
    assert flow_run.work_pool_name == LOCAL_POOL.name
    assert flow_run.infrastructure_pid, "the worker started a process for the run"
    worker_log = Path(settings.state_dir) / "logs" / "worker.log"
    assert str(flow_run.id) in worker_log.read_text(), "the stack's worker picked the run up"
    return flow_run


@pytest.fixture(scope="module")
def small_acme(tmp_path_factory):
    return small_customer(tmp_path_factory.mktemp("data") / "acme", replies=300)


@pytest.fixture(scope="module")
def onboarded(stack, small_acme):
    parameters = {"customer_id": "acme", "data_uri": str(small_acme)}
    flow_run = run_on_worker(stack, "onboard-customer/onboard-customer", parameters, 1200)
    assert flow_run.state is not None and flow_run.state.is_completed(), flow_run.state
    return json.loads(open_store(stack.store, stack).read_bytes("registry/acme.json"))


def test_onboarding_on_the_worker_promotes_every_kind(stack, onboarded):
    assert set(onboarded["models"]) == {"embedding", "classifier", "autocomplete"}
    assert onboarded["models"]["embedding"]["targets"] == {
        "query": "acme/embedding-query/v1.tar.gz",
        "article": "acme/embedding-article/v1.tar.gz",
    }
    assert onboarded["models"]["classifier"]["endpoint"] == "e2e-mme-classifier"
    smoke = [
        latency for entry in onboarded["models"].values() for latency in entry["smoke"].values()
    ]
    assert len(smoke) == 4
    assert all(latency["cold_ms"] > 0 and latency["warm_ms"] > 0 for latency in smoke)


def test_warmup_deployment_runs_on_the_worker(stack, onboarded):
    flow_run = run_on_worker(stack, "warmup/warmup", {}, 300)
    assert flow_run.state is not None and flow_run.state.is_completed(), flow_run.state


def test_warmup_invokes_every_registered_model(stack, onboarded):
    results = warmup()
    assert sorted(r["target_model"] for r in results) == sorted(
        target for entry in onboarded["models"].values() for target in entry["targets"].values()
    )
    assert all(r["status"] == "ok" for r in results)


def test_served_prediction_from_the_command_line(stack, onboarded, capsys):
    assert (
        main(
            [
                "invoke",
                "--customer",
                "acme",
                "--kind",
                "classifier",
                "--text",
                "where is my order?",
                "--json",
            ]
        )
        == 0
    )
    served = json.loads(capsys.readouterr().out)
    assert served["target_model"] == "acme/classifier/v1.tar.gz"
    intents = set(pd.read_csv(ACME / "intents.csv")["intent"])
    assert served["outputs"]["label"][0][0] in intents


def test_second_onboarding_is_v2_and_rollback_returns_to_v1(stack, onboarded, tmp_path):
    # The customer a week later: two more texts per intent, so a tie with v1 goes to v2.
    newer = small_customer(tmp_path / "acme", per_intent=26)
    second = onboard_customer(customer_id="acme", data_uri=str(newer), kinds=["classifier"])
    assert second["version"] == 2
    store = open_store(stack.store, stack)
    assert (
        json.loads(store.read_bytes("registry/acme.json"))["models"]["classifier"]["version"] == 2
    )
    assert main(["rollback", "--customer", "acme", "--kind", "classifier"]) == 0
    assert (
        json.loads(store.read_bytes("registry/acme.json"))["models"]["classifier"]["version"] == 1
    )


def test_a_retrain_worse_than_the_live_version_is_rejected_and_v1_keeps_serving(
    stack, onboarded, small_acme, tmp_path, capsys
):
    store = open_store(stack.store, stack)
    live = json.loads(store.read_bytes("registry/acme.json"))["models"]["classifier"]
    assert live["version"] == 1 and live["gate_evidence"] == "gate-evidence/acme/classifier/v1.json"
    broken = shuffled_intents(small_acme, tmp_path / "broken")
    summary = onboard_customer(customer_id="acme", data_uri=str(broken), kinds=["classifier"])
    assert summary["version"] is None and summary["champions_kept"] == ["classifier"]
    assert json.loads(store.read_bytes("registry/acme.json"))["models"]["classifier"] == live
    (run,) = [
        path
        for path in (Path(stack.state_dir) / "runs" / "acme").iterdir()
        if json.loads((path / "run.json").read_text())["run_id"] == summary["run_id"]
    ]
    gate = json.loads((run / "classifier" / "metadata.json").read_text())["gate"]
    assert gate["decision"] == "champion" and gate["comparison"]["champion"] == "v1"
    assert gate["comparison"]["outcome"] == "worse"
    assert (
        main(["invoke", "--customer", "acme", "--kind", "classifier", "--text", "hi", "--json"])
        == 0
    )
    assert json.loads(capsys.readouterr().out)["target_model"] == "acme/classifier/v1.tar.gz"


def test_warmup_fails_when_a_model_fails_but_warms_the_others(stack, onboarded):
    store = open_store(stack.store, stack)
    manifest = {
        "customer": "ghost",
        "models": {
            "classifier": {
                "endpoint": "e2e-mme-classifier",
                "version": 1,
                "targets": {"classifier": "ghost/classifier/v1.tar.gz"},
            }
        },
        "history": {},
    }
    store.write_bytes("registry/ghost.json", json.dumps(manifest).encode())
    try:
        with pytest.raises(WarmupFailed, match=r"ghost/classifier/v1\.tar\.gz"):
            warmup(overrides={"sagemaker.invoke_retries": "0"})
    finally:
        store.delete("registry/ghost.json")
