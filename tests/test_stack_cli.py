"""`mme-factory up / status / down` start, report and stop the local stack by PID."""

from __future__ import annotations

import json

import psutil
import pytest

from cli.main import main
from mme_factory.process_identity import ProcessIdentity
from test_support.servers import free_port

pytestmark = pytest.mark.integration


@pytest.fixture
def stack_env(tmp_path, monkeypatch):
    port = free_port()
    monkeypatch.setenv("MME_FACTORY_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("MME_FACTORY_MME_LOCAL__PORT", str(port))
    monkeypatch.setenv("MME_FACTORY_PREFECT__PORT", str(free_port()))
    yield tmp_path / "state", port
    main(["down"])


def test_up_status_down(stack_env, capsys):
    state_dir, port = stack_env
    assert main(["up"]) == 0
    capsys.readouterr()
    assert main(["status", "--json"]) == 0
    everything = json.loads(capsys.readouterr().out)
    assert set(everything) == {"mme_local", "prefect_server", "deployments"}
    assert all(service["healthy"] for service in everything.values())
    report = everything["mme_local"]
    assert report["url"] == f"http://127.0.0.1:{port}"
    assert report["healthy"] is True
    assert psutil.pid_exists(report["pid"])
    recorded = ProcessIdentity.from_json((state_dir / "run" / "mme_local.pid").read_text())
    assert recorded is not None and recorded.pid == report["pid"]
    assert recorded.create_time == psutil.Process(report["pid"]).create_time()
    assert (state_dir / "logs" / "mme_local.log").exists()

    assert main(["up"]) == 0, "up is idempotent while the stack runs"
    assert main(["down"]) == 0
    assert not psutil.pid_exists(report["pid"]) or (
        psutil.Process(report["pid"]).status() == psutil.STATUS_ZOMBIE
    )
    capsys.readouterr()
    assert main(["status", "--json"]) == 1
    assert json.loads(capsys.readouterr().out)["mme_local"]["running"] is False
