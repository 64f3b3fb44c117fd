"""Warm-up on the real local stack when an endpoint's TargetModels do not all fit its memory.

Five customers' tiny classifiers on one endpoint whose budget holds about three (calibrated
from one measured load): after customer traffic to two of them, the warm-up keeps those two
loaded, warms what else fits, reports the rest over capacity and the flow fails naming the
instances needed.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from flows.warmup import WarmupFailed, warmup
from mme_factory.aws_clients import sagemaker_client
from mme_factory.inference_client import InferenceClient
from mme_factory.model_kinds import ModelKind
from mme_factory.naming import endpoint_name_for
from mme_factory.protocol import endpoint_path
from mme_factory.settings import Settings, load_settings
from mme_factory.store import open_store
from tasks.deployment.customer_lock import customer_lock
from tasks.deployment.publish.promote import manifest_entry, promote
from tasks.deployment.publish.register_mme import register_mme, wait_in_service
from tasks.deployment.warmup.warmup_models import ModelState, warm_models
from tasks.packaging.package_triton import PackageSummary, package_triton
from test_support.mme_local_harness import ServiceProcess
from test_support.tiny_exports import write_classifier

pytestmark = pytest.mark.integration

ENV = "cap"
ENDPOINT = endpoint_name_for("classifier", ENV)
CUSTOMERS = [f"cust{index}" for index in range(5)]
BUSY = ["cust1", "cust3"]
MODELS_THE_BUDGET_HOLDS = 3  # in units of the first measured load
Stack = tuple[dict[str, str], ServiceProcess]  # the pipeline's environment, the service


def key(customer: str) -> str:
    return f"{customer}/classifier/v1.tar.gz"


def classifier_run(runs: Path, customer: str, seed: int) -> Path:
    """A run directory with only a tiny classifier exported."""
    run = runs / customer / "r1"
    write_classifier(run / "classifier", seed)
    (run / "run.json").write_text(json.dumps({"customer": customer, "run_id": "r1"}), "utf-8")
    return run


def stack_environ(root: Path, budget: int | None = None) -> dict[str, str]:
    environ = {
        "MME_FACTORY_STATE_DIR": str(root / "state"),
        "MME_FACTORY_STORE": str(root / "store"),
        "MME_FACTORY_ENV": ENV,
        "MME_FACTORY_SAGEMAKER__WAIT_DELAY_S": "1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }
    return environ | ({"MME_FACTORY_MEMORY__BUDGET": str(budget)} if budget else {})


def pipeline_environ(environ: dict[str, str], service: ServiceProcess) -> dict[str, str]:
    return environ | {
        "MME_FACTORY_ENDPOINTS__SAGEMAKER_ENDPOINT_URL": service.url,
        "MME_FACTORY_ENDPOINTS__SAGEMAKER_RUNTIME_ENDPOINT_URL": service.url,
    }


def register_and_promote(summaries: list[PackageSummary], settings: Settings) -> None:
    store = open_store(settings.store, settings)
    for summary in summaries:
        with customer_lock(store, summary.customer, settings.sagemaker.lock_wait_s):
            registrations = [register_mme(package, 1, settings) for package in summary.packages]
            entry = manifest_entry(registrations, {}, summary.run_id)
            promote(store, summary.customer, {"classifier": entry})


def describe_endpoint(service: ServiceProcess) -> dict[str, Any]:
    return service.get_json(endpoint_path(ENDPOINT))


def loaded(service: ServiceProcess) -> set[str]:
    return {model["target_model"] for model in describe_endpoint(service)["models"]}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Registered classifiers, then the service restarted with a budget for about three."""
    root = tmp_path_factory.mktemp("over-capacity")
    packaging = load_settings(environ=stack_environ(root))
    summaries = [
        package_triton(
            classifier_run(root / "runs", customer, seed=500 + 10 * index),
            packaging,
            version="v1",
            kinds=[ModelKind.CLASSIFIER],
        )
        for index, customer in enumerate(CUSTOMERS)
    ]
    with ServiceProcess(stack_environ(root), root / "calibrate.log") as service:
        settings = load_settings(environ=pipeline_environ(stack_environ(root), service))
        register_and_promote(summaries, settings)
        InferenceClient.from_settings(settings).classify(CUSTOMERS[0], ["hello"])
        calibration = describe_endpoint(service)
    footprint = calibration["target_models"][key(CUSTOMERS[0])]["footprint_bytes"]
    assert footprint > 0
    budget = calibration["memory_bytes"] - footprint + MODELS_THE_BUDGET_HOLDS * footprint
    environ = stack_environ(root, budget)
    service = ServiceProcess(environ, root / "service.log")
    service.start(timeout_s=60)
    try:
        environ = pipeline_environ(environ, service)
        settings = load_settings(environ=environ)
        wait_in_service(sagemaker_client(settings), settings, ENDPOINT)
        yield environ, service
    finally:
        service.stop()


def test_busy_models_stay_loaded_and_the_rest_is_over_capacity(
    stack: Stack, monkeypatch: pytest.MonkeyPatch, prefect_api_url: str
) -> None:
    environ, service = stack
    settings = load_settings(environ=environ)
    client = InferenceClient.from_settings(settings)
    for customer in BUSY:
        client.classify(customer, ["where is my parcel?"])

    first = warm_models(settings, concurrency=2)

    rows = {r.customer: r for r in first.results}
    assert {c for c, r in rows.items() if r.status == "failed"} == set()
    over = {c for c, r in rows.items() if r.state == ModelState.OVER_CAPACITY}
    warmed = {c for c, r in rows.items() if r.status == "ok"}
    assert over and set(BUSY) <= warmed and warmed | over == set(CUSTOMERS)
    assert all(rows[c].state == "warm" and rows[c].invocations_last_hour == 1 for c in BUSY)
    now_loaded = loaded(service)
    assert {key(c) for c in warmed} <= now_loaded
    assert not {key(c) for c in over} & now_loaded
    assert len(first.shortfalls) == 1
    assert first.shortfalls[0].startswith(f"{ENDPOINT}: 5 TargetModels need ")

    second = warm_models(settings, concurrency=2)

    assert {r.customer for r in second.results if r.state == ModelState.OVER_CAPACITY} == over
    assert [r.target_model for r in second.results if r.status == "ok" and r.state != "warm"] == []
    assert set(BUSY) <= {r.customer for r in second.results if r.status == "ok"}

    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    shortfall = r"5 TargetModels need [2-9] instances, it has 1"
    with pytest.raises(WarmupFailed, match=shortfall):
        warmup(concurrency=2)
    assert {key(c) for c in BUSY} <= loaded(service)
