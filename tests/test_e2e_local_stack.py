"""End to end on the local stack: onboard-customer then warmup, with tiny models.

A real mme_local process (real Triton behind it), a local store, Prefect's test harness, and
the sample customer cut small so that tiny models train in seconds.
"""

from __future__ import annotations

import json

import pandas as pd
import pytest
from prefect.testing.utilities import prefect_test_harness

from cli.main import main
from flows.onboard_customer import onboard_customer
from flows.warmup import WarmupFailed, warmup
from mme_factory.settings import load_settings
from mme_factory.store import open_store
from test_support.tiny_stack import small_customer, tiny_stack
from tests.conftest import ACME

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    environ, service = tiny_stack(tmp_path_factory.mktemp("e2e"), "e2e")
    service.start(timeout_s=60)
    patch = pytest.MonkeyPatch()
    for name, value in environ.items():
        patch.setenv(name, value)
    try:
        with prefect_test_harness(server_startup_timeout=120):
            yield load_settings()
    finally:
        patch.undo()
        service.stop()


@pytest.fixture(scope="module")
def small_acme(tmp_path_factory):
    return small_customer(tmp_path_factory.mktemp("data") / "acme", replies=300)


@pytest.fixture(scope="module")
def onboarded(stack, small_acme):
    return onboard_customer(customer_id="acme", data_uri=str(small_acme))


def test_onboarding_promotes_every_kind(stack, onboarded):
    manifest = json.loads(open_store(stack.store, stack).read_bytes("registry/acme.json"))
    assert set(manifest["models"]) == {"embedding", "classifier", "autocomplete"}
    assert manifest["models"]["embedding"]["targets"] == {
        "query": "acme/embedding-query/v1.tar.gz",
        "article": "acme/embedding-article/v1.tar.gz",
    }
    assert manifest["models"]["classifier"]["endpoint"] == "e2e-mme-classifier"
    assert all(smoke["passed"] for smoke in onboarded["smoke"])
    assert len(onboarded["smoke"]) == 4


def test_warmup_invokes_every_registered_model(stack, onboarded):
    results = warmup()
    assert sorted(r["target_model"] for r in results) == sorted(
        model["target_model"] for model in onboarded["models"]
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


def test_second_onboarding_is_v2_and_rollback_returns_to_v1(stack, onboarded, small_acme):
    second = onboard_customer(customer_id="acme", data_uri=str(small_acme), kinds=["classifier"])
    assert second["version"] == 2
    store = open_store(stack.store, stack)
    assert (
        json.loads(store.read_bytes("registry/acme.json"))["models"]["classifier"]["version"] == 2
    )
    assert main(["rollback", "--customer", "acme", "--kind", "classifier"]) == 0
    assert (
        json.loads(store.read_bytes("registry/acme.json"))["models"]["classifier"]["version"] == 1
    )


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
