"""offboard-customer on the local stack: a real mme_local with Triton, tiny models, Prefect.

A customer onboarded from data in the managed store is offboarded: its TargetModels, run
directories, reports and data are gone, its manifest is a tombstone, `invoke` and the client
refuse it, the local endpoint has unloaded its models, and onboarding it again continues after
the highest version once reinstated. An onboarding that holds the customer lock makes
offboarding wait, then fail naming the run that holds it; one that was training when its
customer was offboarded leaves nothing behind.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from cli.main import main
from flows.offboard_customer import offboard_customer
from flows.onboard_customer import onboard_customer
from mme_factory.inference_client import InferenceClient
from mme_factory.manifest import CustomerOffboarded, ManifestError
from mme_factory.protocol import endpoint_path
from mme_factory.settings import Settings, load_settings
from mme_factory.store import ArtifactStore, open_store
from tasks.deployment.offboard.offboard_customer import offboard_customer as offboard_plainly
from test_support.mme_local_harness import ServiceProcess
from test_support.tiny_stack import small_customer, tiny_stack

pytestmark = pytest.mark.integration

ENV = "offb"
CLASSIFIER_ENDPOINT = f"{ENV}-mme-classifier"
RUN_TIMEOUT_S = 240.0


@dataclass
class Stack:
    root: Path
    environ: dict[str, str]
    service: ServiceProcess
    settings: Settings

    @property
    def store(self) -> ArtifactStore:
        return open_store(self.settings.store, self.settings)

    def customer_keys(self, customer: str) -> list[str]:
        return [key for key in self.store.list_keys("mme/") if f"/{customer}/" in key]

    def loaded(self, customer: str) -> list[str]:
        described = self.service.get_json(endpoint_path(CLASSIFIER_ENDPOINT))
        return [
            m["target_model"]
            for m in described["models"]
            if m["target_model"].startswith(f"{customer}/")
        ]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, prefect_api_url: str) -> Iterator[Stack]:
    root = tmp_path_factory.mktemp("offboard")
    environ, service = tiny_stack(root, ENV, {"MME_FACTORY_SAGEMAKER__INVOKE_RETRIES": "0"})
    service.start(timeout_s=60)
    patch = pytest.MonkeyPatch()
    for name, value in environ.items():
        patch.setenv(name, value)
    try:
        environ["PREFECT_API_URL"] = prefect_api_url
        yield Stack(root, environ, service, load_settings())
    finally:
        patch.undo()
        service.stop()


@contextmanager
def onboarding_process(
    stack: Stack, customer: str, data: Path, log_path: Path
) -> Iterator[subprocess.Popen]:
    """A classifier onboarding in a process of its own; its group killed if still running."""
    command = [sys.executable, "-m", "test_support.onboarding_process", customer, str(data)]
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [*command, "classifier"],
            env={**os.environ, **stack.environ},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield process
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)


def wait_until(
    condition: Callable[[], bool], process: subprocess.Popen, log_path: Path, what: str
) -> None:
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while not condition():
        assert process.poll() is None, log_path.read_text()
        assert time.monotonic() < deadline, f"the onboarding never {what}"
        time.sleep(0.05)


@pytest.fixture(scope="module")
def onboarded(stack: Stack) -> dict:
    """acme, its data in the managed store, with a classifier served (and loaded) at v1."""
    data = small_customer(Path(stack.settings.store) / "customers" / "acme")
    return onboard_customer(customer_id="acme", data_uri=str(data), kinds=["classifier"])


def test_dry_run_lists_what_would_go_and_deletes_nothing(stack, onboarded, capsys):
    before = stack.customer_keys("acme")
    assert before == [f"mme/{CLASSIFIER_ENDPOINT}/acme/classifier/v1.tar.gz"]
    assert stack.loaded("acme") == ["acme/classifier/v1.tar.gz"]  # the smoke test loaded it
    assert main(["offboard", "--customer", "acme", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "would be offboarded (dry run, nothing deleted)" in out
    for row in ("TargetModels", "loaded models (local endpoint)", "run directories"):
        assert row in out
    assert "data (managed store)" in out and "would replace: manifest -> tombstone" in out
    assert stack.customer_keys("acme") == before
    assert stack.loaded("acme") == ["acme/classifier/v1.tar.gz"]
    assert (stack.settings.runs_dir / "acme").is_dir()
    assert stack.store.exists("customers/acme/intents.csv")


def test_offboarded_customer_is_deleted_unloaded_and_refused(stack, onboarded, capsys):
    report = offboard_customer(customer_id="acme")
    assert not report["dry_run"] and report["highest_version"] == 1
    assert stack.customer_keys("acme") == []
    assert stack.loaded("acme") == []
    assert not (stack.settings.runs_dir / "acme").exists()
    assert not list(stack.store.list_keys("customers/acme/"))
    assert not (Path(stack.settings.store) / "customers" / "acme").exists()
    tombstone = json.loads(stack.store.read_bytes("registry/acme.json"))
    assert tombstone["offboarded"] is True and tombstone["highest_version"] == 1
    assert not stack.store.exists("registry/acme.version")
    reports = [r for r in report["rows"] if r["what"] == "validation reports"]
    assert reports and reports[0]["count"] >= 1
    assert not [
        n for n in reports[0]["items"] if (stack.settings.reports_dir / "validation" / n).exists()
    ]
    unloaded = [r for r in report["rows"] if r["what"] == "loaded models (local endpoint)"]
    assert unloaded[0]["items"] == ["acme/classifier/v1.tar.gz"]

    capsys.readouterr()
    assert main(["invoke", "--customer", "acme", "--kind", "classifier", "--text", "hi"]) == 1
    assert "customer acme was offboarded at" in capsys.readouterr().err
    with pytest.raises(CustomerOffboarded, match="reinstate --customer acme"):
        InferenceClient.from_settings(stack.settings).classify("acme", ["where is my order?"])


def test_a_second_offboarding_says_already_offboarded(stack, onboarded, capsys):
    assert main(["offboard", "--customer", "acme"]) == 0
    assert "customer acme is already offboarded" in capsys.readouterr().out


def test_an_unknown_customer_is_an_error_that_says_so(stack, capsys):
    assert main(["offboard", "--customer", "nobody"]) == 1
    assert "no customer nobody: no manifest or tombstone" in capsys.readouterr().err


def test_an_offboarded_customer_is_refused_before_training_until_reinstated(
    stack, onboarded, tmp_path, capsys
):
    offboard_customer(customer_id="acme")
    tombstone = stack.store.read_bytes("registry/acme.json")
    with pytest.raises(CustomerOffboarded, match="reinstate --customer acme"):
        onboard_customer(
            customer_id="acme",
            data_uri=str(small_customer(tmp_path / "acme")),
            kinds=["classifier"],
        )
    assert stack.store.read_bytes("registry/acme.json") == tombstone
    assert not (stack.settings.runs_dir / "acme").exists()
    capsys.readouterr()
    assert main(["reinstate", "--customer", "acme"]) == 0
    assert "its next onboarding publishes v2" in capsys.readouterr().out


def test_onboarding_again_holds_off_offboarding_and_continues_after_the_highest_version(
    stack, onboarded, tmp_path, capsys
):
    """The onboarding runs in its own process; while it holds the customer lock, an offboarding
    with a short lock wait waits, then fails naming it."""
    log_path = tmp_path / "onboarding.log"
    with onboarding_process(stack, "acme", small_customer(tmp_path / "acme"), log_path) as run:
        wait_until(lambda: stack.store.exists("registry/acme.lock"), run, log_path, "took the lock")
        short_wait = stack.settings.model_copy(
            update={"sagemaker": stack.settings.sagemaker.model_copy(update={"lock_wait_s": 1.0})}
        )
        started = time.monotonic()
        holder = rf"customer acme is locked by another run.*'pid': {run.pid}"
        with pytest.raises(ManifestError, match=holder):
            offboard_plainly(short_wait, "acme")
        assert time.monotonic() - started >= 1.0
        assert run.wait(timeout=RUN_TIMEOUT_S) == 0, log_path.read_text()
    assert "promoted v2" in (tmp_path / "onboarding.log").read_text()
    capsys.readouterr()
    assert main(["invoke", "--customer", "acme", "--kind", "classifier", "--text", "hi"]) == 0
    assert "acme/classifier/v2.tar.gz" in capsys.readouterr().out


def test_an_offboarding_while_the_customer_trains_leaves_nothing_of_that_run(stack, tmp_path):
    """Training runs outside the customer lock: the run finds the tombstone under the lock,
    publishes nothing, numbers no version, and deletes its own run directory."""
    log_path = tmp_path / "initech.log"
    runs = stack.settings.runs_dir / "initech"
    with onboarding_process(
        stack, "initech", small_customer(tmp_path / "initech"), log_path
    ) as run:
        wait_until(lambda: runs.is_dir() and any(runs.iterdir()), run, log_path, "started training")
        report = offboard_plainly(stack.settings, "initech")
        assert not report.already_offboarded
        assert run.wait(timeout=RUN_TIMEOUT_S) == 1, log_path.read_text()
    assert "CustomerOffboarded" in log_path.read_text()
    assert not runs.exists()
    assert stack.customer_keys("initech") == []
    assert stack.loaded("initech") == []
    assert not stack.store.exists("registry/initech.version")
    assert json.loads(stack.store.read_bytes("registry/initech.json"))["offboarded"] is True
