"""`mme-factory plan` measuring registered tiny models on a real Triton server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cli.main import main
from mme_factory.naming import model_data_prefix
from mme_factory.records import CustomerManifest
from mme_factory.settings import load_settings
from mme_factory.store import LocalStore, file_sha256
from planner.runtime_overhead import PYTHON_STUB_SHM_MIB
from tasks.deployment.publish.promote import write_manifest
from tasks.packaging.package_triton import package_triton
from test_support.tiny_exports import write_tiny_run

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def registered_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A local store holding one customer's four tiny TargetModels and its manifest."""
    work = tmp_path_factory.mktemp("plan")
    run = write_tiny_run(work / "state", "acme", "run-1", seed=3)
    summary = package_triton(run, load_settings(environ={}), version="v1")
    store = LocalStore(work / "store")
    models: dict[str, dict] = {}
    for package in summary.packages:
        endpoint = f"test-mme-{package.kind}"
        target_model = f"acme/{package.target}/v1.tar.gz"
        tarball = Path(package.tarball)
        store.put_file(model_data_prefix(endpoint) + target_model, tarball, file_sha256(tarball))
        entry = models.setdefault(package.kind, {"endpoint": endpoint, "targets": {}})
        entry["targets"][package.role or package.kind] = target_model
    write_manifest(store, CustomerManifest(customer="acme", models=models))
    return work / "store"


def test_plan_measures_every_registered_target_model(
    registered_store: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MME_FACTORY_STORE", str(registered_store))
    code = main(["plan", "--customers", "100,1000", "--repeats", "3", "--json"])
    assert code == 0
    document = json.loads(capsys.readouterr().out)
    measured = document["measured"]["models"]
    assert sorted(m["label"] for m in measured) == [
        "acme/autocomplete/v1.tar.gz",
        "acme/classifier/v1.tar.gz",
        "acme/embedding-article/v1.tar.gz",
        "acme/embedding-query/v1.tar.gz",
    ]
    for model in measured:
        # Each model runs in its own stub process, so loading it adds real resident memory.
        assert model["rss_added_mib"] > 10, model
        assert model["load_s"] > 0 and model["warm_p50_ms"] > 0
    footprints = {f["kind"]: f for f in document["footprints"]}
    assert footprints["embedding"]["targets_per_customer"] == 2
    assert footprints["classifier"]["memory_mib"] == pytest.approx(
        next(m["rss_added_mib"] for m in measured if m["kind"] == "classifier"), abs=1e-3
    )
    plans = {(p["instance_type"], p["customers"]): p for p in document["plans"]}
    assert set(plans) == {
        ("ml.g4dn.xlarge", 100),
        ("ml.g4dn.xlarge", 1000),
        ("ml.c5.2xlarge", 100),
        ("ml.c5.2xlarge", 1000),
    }
    assert plans["ml.c5.2xlarge", 1000]["instances"] >= plans["ml.c5.2xlarge", 100]["instances"]


def test_plan_estimates_production_memory_as_a_breakdown(
    registered_store: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MME_FACTORY_STORE", str(registered_store))
    assert main(["plan", "--customers", "100", "--repeats", "2", "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    classifier = next(m for m in document["measured"]["models"] if m["kind"] == "classifier")
    assert classifier["stub_uss_mib"]["acme--classifier--v1--text"] > 0
    production = document["production_estimate"]
    rows = {(row["instance_type"], row["kind"]): row for row in production["breakdown"]}
    assert set(rows) == {
        (instance, kind)
        for instance in ("ml.g4dn.xlarge", "ml.c5.2xlarge")
        for kind in ("embedding", "classifier", "autocomplete")
    }
    autocomplete = rows["ml.g4dn.xlarge", "autocomplete"]
    # The libtorch generator shares tritonserver's CUDA context; its one Python text step holds
    # a /dev/shm region of the configured size.
    assert autocomplete["overhead_gpu"]["mib"] == 0
    assert autocomplete["shm"] == {"mib": PYTHON_STUB_SHM_MIB, "source": "modeled"}
    assert autocomplete["measured_at"] == "8 x 64 tokens + 32 new"
    embedding = rows["ml.g4dn.xlarge", "embedding"]
    assert embedding["overhead_gpu"]["mib"] == 0
    # The tokenizer stub's memory comes from the local run.
    assert embedding["overhead_host"]["source"] == "measured"
    assert embedding["weights"]["mib"] > 3 and embedding["measured_at"] == "8 x 16 tokens"
    assert rows["ml.c5.2xlarge", "autocomplete"]["total_gpu"]["mib"] == 0
    assert {plan["instance_type"] for plan in production["plans"]} == {
        "ml.g4dn.xlarge",
        "ml.c5.2xlarge",
    }
    # Both baselines are priced beside the plan.
    plan = production["plans"][0]
    assert plan["slice_monthly"] > plan["mme_monthly"] and plan["single_model_monthly"] > 0


def test_plan_names_a_customer_with_no_registered_models(
    registered_store: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MME_FACTORY_STORE", str(registered_store))
    assert main(["plan", "--customer", "globex"]) == 1
    assert "no registered models for globex" in capsys.readouterr().err


def test_plan_measures_a_tarball_given_by_path(
    registered_store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tarball = registered_store / "mme" / "test-mme-classifier" / "acme" / "classifier" / "v1.tar.gz"
    code = main(["plan", "--tarball", str(tarball), "--repeats", "2", "--customers", "10"])
    assert code == 0
    out = capsys.readouterr().out
    assert "Local emulator's figures" in out and "Production estimate per TargetModel" in out
    assert "classifier" in out and "embedding" not in out.split("Production estimate")[1]
