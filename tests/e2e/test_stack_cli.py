"""`mme-factory up / status / down` start, report and stop the local stack by PID, and the
deployments `up` applies run on its process pool's worker."""

from __future__ import annotations

import json

import psutil
import pytest
from prefect.client.orchestration import get_client
from prefect.deployments import run_deployment
from prefect.settings import PREFECT_API_URL, temporary_settings

from cli.main import main
from deployments.local_stack import prefect_api_url
from deployments.work_pools import LOCAL_POOL
from mme_factory.process_identity import ProcessIdentity
from test_support.servers import free_port

pytestmark = pytest.mark.integration

SERVICES = {"mme_local", "prefect_server", "worker"}


@pytest.fixture
def stack_env(tmp_path, monkeypatch):
    port = free_port()
    prefect_port = free_port()
    monkeypatch.setenv("MME_FACTORY_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("MME_FACTORY_STORE", str(tmp_path / "store"))
    monkeypatch.setenv("MME_FACTORY_MME_LOCAL__PORT", str(port))
    monkeypatch.setenv("MME_FACTORY_PREFECT__PORT", str(prefect_port))
    monkeypatch.setenv("MME_FACTORY_PREFECT__WORKER_LIMIT", "1")
    # Beside another test worker's trainings a worker can take over a minute to come online.
    monkeypatch.setenv("MME_FACTORY_PREFECT__WORKER_START_TIMEOUT_S", "240")
    monkeypatch.setenv("MME_FACTORY_PREFECT__START_TIMEOUT_S", "240")
    monkeypatch.setenv("MME_FACTORY_MME_LOCAL__START_TIMEOUT_S", "120")
    yield tmp_path / "state", port, prefect_api_url(prefect_port)
    main(["down"])


def _status(capsys) -> dict:
    capsys.readouterr()
    main(["status", "--json"])
    return json.loads(capsys.readouterr().out)


@pytest.mark.timeout(600)
def test_up_runs_deployments_on_the_worker_and_down_stops_it(stack_env, capsys, tmp_path):
    state_dir, port, api_url = stack_env
    assert main(["up"]) == 0
    everything = _status(capsys)
    assert set(everything) == SERVICES
    unhealthy = {name: service for name, service in everything.items() if not service["healthy"]}
    assert not unhealthy, unhealthy
    report = everything["mme_local"]
    assert report["url"] == f"http://127.0.0.1:{port}"
    assert psutil.pid_exists(report["pid"])
    recorded = ProcessIdentity.from_json((state_dir / "run" / "mme_local.pid").read_text())
    assert recorded is not None and recorded.pid == report["pid"]
    assert recorded.started_since_boot_s == pytest.approx(
        psutil.Process(report["pid"]).create_time() - psutil.boot_time(), abs=0.05
    )
    worker = everything["worker"]
    assert "--limit" in psutil.Process(worker["pid"]).cmdline()
    assert psutil.Process(worker["pid"]).cmdline()[-1] == "1", "worker_limit from the settings"

    with temporary_settings(updates={PREFECT_API_URL: api_url}):
        with get_client(sync_client=True) as client:
            deployment = client.read_deployment_by_name("warmup/warmup")
            workers = client.read_workers_for_work_pool(LOCAL_POOL.name)
        assert deployment.work_pool_name == LOCAL_POOL.name
        assert deployment.job_variables["env"]["MME_FACTORY_STORE"] == str(tmp_path / "store")
        assert [w.name for w in workers] == [f"{LOCAL_POOL.name}-worker"]
        flow_run = run_deployment("warmup/warmup", timeout=240, poll_interval=2)
    assert flow_run.state is not None and flow_run.state.is_completed(), flow_run.state
    assert flow_run.work_pool_name == LOCAL_POOL.name
    assert flow_run.infrastructure_pid, "a worker started the run's process"
    worker_log = (state_dir / "logs" / "worker.log").read_text()
    assert str(flow_run.id) in worker_log, "the stack's worker picked the run up"

    assert main(["up"]) == 0, "up is idempotent while the stack runs"
    assert _status(capsys)["worker"]["pid"] == worker["pid"]
    assert main(["down"]) == 0
    for pid in (report["pid"], worker["pid"]):
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    everything = _status(capsys)
    assert not any(service["running"] for service in everything.values())
    assert main(["status"]) == 1
