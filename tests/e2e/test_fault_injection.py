"""Faults at random points of onboarding runs on the local stack leave everything consistent.

A real mme_local process (real Triton behind it), a local store and a Prefect test server. Each
onboarding runs in a process of its own. One run has Triton killed under it, the next the
mme_local service (restarted at once), the next the onboarding process itself; each kill comes a
random moment after the run's first upload (seeded: FAULT_INJECTION_SEED). After every run:
the manifest's TargetModels exist with the promoted bytes and answer through the endpoint (the
previous version serves when a run did not promote), and a run that ended by itself left no
upload the manifest does not name. A last run then succeeds and promotes a new version.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest
from botocore.exceptions import ClientError

from mme_factory.aws_clients import sagemaker_runtime_client
from mme_factory.manifest import read_manifest
from mme_factory.naming import model_data_prefix
from mme_factory.protocol import kserve_request
from mme_factory.records import CustomerManifest
from mme_factory.settings import Settings, load_settings
from mme_factory.store import open_store
from tasks.deployment.publish.withdraw_unpromoted import promoted_targets
from test_support.mme_local_harness import ServiceProcess
from test_support.tiny_stack import small_customer, tiny_stack

pytestmark = pytest.mark.integration

SEED = int(os.environ.get("FAULT_INJECTION_SEED", "2026"))
CUSTOMER = "acme"
KINDS = ["classifier", "embedding"]
RUN_TIMEOUT_S = 240.0
INVOKE_DEADLINE_S = 90.0


@dataclass
class Stack:
    root: Path
    environ: dict[str, str]
    service: ServiceProcess
    settings: Settings
    data: Path
    runs: list[Onboarding]  # every onboarding started, killed at teardown if still running


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, prefect_api_url: str) -> Iterator[Stack]:
    root = tmp_path_factory.mktemp("faults")
    # A killed run's lock is broken after 20 s, so the next run gets in.
    environ, service = tiny_stack(root, "faults", {"MME_FACTORY_SAGEMAKER__LOCK_STALE_S": "20"})
    runs: list[Onboarding] = []
    service.start(timeout_s=60)
    try:
        environ["PREFECT_API_URL"] = prefect_api_url
        settings = load_settings(environ=environ)
        yield Stack(root, environ, service, settings, small_customer(root / "acme"), runs)
    finally:
        for run in runs:
            run.kill()  # a run that a failed assertion left running
        service.stop()


class Onboarding:
    """`python -m test_support.onboarding_process` in its own session, stopped by PID."""

    def __init__(self, stack: Stack, log: Path) -> None:
        command = [sys.executable, "-m", "test_support.onboarding_process", CUSTOMER]
        command += [str(stack.data), *KINDS]
        # Each run trains with a seed of its own: a retrain from the very data, settings and code
        # of the live version that only ties with it is not served, and every run here publishes.
        seed = {"MME_FACTORY_TRAINING__SEED": str(100 + len(stack.runs))}
        with log.open("ab") as output:
            self.process = subprocess.Popen(
                command,
                env={**os.environ, **stack.environ, **seed},
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        stack.runs.append(self)

    def wait(self, timeout_s: float = RUN_TIMEOUT_S) -> int:
        try:
            return self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.kill()
            raise

    def kill(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)


def uploaded_keys(stack: Stack) -> set[str]:
    store = open_store(stack.settings.store, stack.settings)
    return {key for key in store.list_keys("mme/") if f"/{CUSTOMER}/" in key}


def wait_for_new_upload(stack: Stack, before: set[str], run: Onboarding) -> None:
    """Until the run has uploaded its first TargetModel (or ended), bounded."""
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while time.monotonic() < deadline and run.process.poll() is None:
        if uploaded_keys(stack) - before:
            return
        time.sleep(0.2)


def kill_process_tree(pid: int) -> None:
    """SIGKILL a process and everything it started, each by PID."""
    try:
        parent = psutil.Process(pid)
        family = [parent, *parent.children(recursive=True)]
    except psutil.NoSuchProcess:
        return
    for process in family:
        try:
            process.kill()
        except psutil.NoSuchProcess:
            continue
    psutil.wait_procs(family, timeout=30)


def tritons_of(service: ServiceProcess) -> list[psutil.Process]:
    assert service.process is not None
    children = psutil.Process(service.process.pid).children(recursive=True)
    return [child for child in children if child.name() == "tritonserver"]


def invoke(stack: Stack, endpoint: str, target: str) -> None:
    """One answer from the endpoint for `target`, waiting out cold loads and restarts."""
    runtime = sagemaker_runtime_client(stack.settings)
    deadline = time.monotonic() + INVOKE_DEADLINE_S
    while True:
        try:
            answer = runtime.invoke_endpoint(
                EndpointName=endpoint,
                TargetModel=target,
                ContentType="application/json",
                Body=kserve_request({"text": ["where is my order?"]}),
            )
            assert json.loads(answer["Body"].read())["outputs"]
            return
        except ClientError as error:
            if time.monotonic() > deadline:
                raise AssertionError(f"{endpoint} {target} does not serve: {error}") from None
            time.sleep(1.0)


def assert_consistent(stack: Stack, run_ended_by_itself: bool) -> CustomerManifest:
    store = open_store(stack.settings.store, stack.settings)
    manifest = read_manifest(store, CUSTOMER)
    for entry in manifest.models.values():
        for role, target in (entry.targets or {}).items():
            key = model_data_prefix(entry.endpoint) + target
            assert store.exists(key), f"the manifest names {key}, which is gone"
            assert store.stored_sha256(key) == (entry.sha256 or {})[role]
            invoke(stack, entry.endpoint, target)
    partial = [p for p in Path(stack.settings.store).rglob("*") if ".partial" in p.name]
    assert not partial, f"half-written files in the store: {partial}"
    if run_ended_by_itself:
        unnamed = {
            key
            for key in uploaded_keys(stack)
            if key.split("/", 2)[2] not in promoted_targets(manifest)
        }
        assert not unnamed, f"uploads the manifest does not name: {sorted(unnamed)}"
    return manifest


def promoted_version(manifest: CustomerManifest) -> int:
    return max((entry.version or 0 for entry in manifest.models.values()), default=0)


@pytest.mark.timeout(900)
def test_faults_at_random_points_leave_store_manifest_and_endpoints_consistent(
    stack: Stack,
) -> None:
    rng = random.Random(SEED)
    logs = stack.root / "onboarding.log"
    print(f"fault seed {SEED}")

    first = Onboarding(stack, logs)
    assert first.wait() == 0, logs.read_text()[-3000:]
    versions = [promoted_version(assert_consistent(stack, run_ended_by_itself=True))]
    assert versions == [1]

    def kill_triton() -> None:
        for triton in tritons_of(stack.service):
            kill_process_tree(triton.pid)

    def kill_service() -> None:
        assert stack.service.process is not None
        kill_process_tree(stack.service.process.pid)
        stack.service.start(timeout_s=60)

    for name, fault in (("triton", kill_triton), ("mme_local", kill_service)):
        before = uploaded_keys(stack)
        run = Onboarding(stack, logs)
        wait_for_new_upload(stack, before, run)
        time.sleep(rng.uniform(0.0, 4.0))
        print(f"killing {name} at {time.strftime('%X')}")
        fault()
        code = run.wait()
        manifest = assert_consistent(stack, run_ended_by_itself=True)
        versions.append(promoted_version(manifest))
        if code == 0:
            assert versions[-1] > versions[-2], "a run that succeeded promoted a new version"
        else:
            assert versions[-1] == versions[-2], "a failed run leaves the previous version"
        print(f"{name}: run exited {code}, v{versions[-1]} serves")

    before = uploaded_keys(stack)
    run = Onboarding(stack, logs)
    wait_for_new_upload(stack, before, run)
    time.sleep(rng.uniform(0.0, 6.0))
    print(f"killing the onboarding process at {time.strftime('%X')}")
    run.kill()
    killed = assert_consistent(stack, run_ended_by_itself=False)

    last = Onboarding(stack, logs)
    assert last.wait() == 0, logs.read_text()[-3000:]
    final = assert_consistent(stack, run_ended_by_itself=True)
    assert promoted_version(final) > promoted_version(killed)
    assert final.history, "the previous version stays in the manifest's history"
