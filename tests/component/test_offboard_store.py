"""Offboarding against a local store and the S3 API (moto's server): what is deleted, what stays.

A customer is laid out as the pipeline leaves it: promoted versions with a history, a withdrawn
version under another endpoint's prefix, a version number assigned but never uploaded, run
directories naming their data and validation report, and data in the managed store.
"""

from __future__ import annotations

import importlib
import json
import time
from pathlib import Path
from typing import Any

import pytest

from mme_factory.aws_clients import s3_client
from mme_factory.inference_client import TargetResolver
from mme_factory.manifest import CustomerOffboarded, ManifestError, read_manifest, read_registry
from mme_factory.settings import Settings
from mme_factory.store import ArtifactStore, open_store
from tasks.deployment.offboard.offboard_customer import UnknownCustomer, offboard_customer
from tasks.deployment.offboard.reinstate import NotOffboarded, reinstate_customer
from tasks.deployment.publish.promote import promote
from tasks.deployment.version_numbers import assign_version
from test_support.held_lock import lock_held_by_another_run
from test_support.moto_aws import SAGEMAKER, ensure_bucket, moto_settings

pytestmark = pytest.mark.integration
BUCKET = "offboarding"
# The module, not the function the package exports under the same name.
OFFBOARDING = importlib.import_module("tasks.deployment.offboard.offboard_customer")


@pytest.fixture(params=["local", "s3"])
def settings(request, moto_server, tmp_path, monkeypatch) -> Settings:
    """Settings with a local store, then with an S3 store; endpoints on moto (no local one)."""
    s3 = request.param == "s3"
    settings = moto_settings(
        monkeypatch,
        moto_server.url,
        tmp_path / "state",
        SAGEMAKER,
        ENV="off",
        STORE=f"s3://{BUCKET}/{time.monotonic_ns()}" if s3 else str(tmp_path / "bucket"),
        SAGEMAKER__LOCK_WAIT_S="1",
    )
    if s3:
        ensure_bucket(s3_client(settings), BUCKET)
    return settings


def store_of(settings: Settings) -> ArtifactStore:
    return open_store(settings.store, settings)


def entry(version: int) -> dict:
    return {
        "endpoint": "off-mme-classifier",
        "version": version,
        "targets": {"classifier": f"acme/classifier/v{version}.tar.gz"},
    }


def write_run(settings: Settings, customer: str, run_id: str, data_uri: str) -> Path:
    report = settings.reports_dir / "validation" / f"{run_id}.md"
    report.parent.mkdir(parents=True, exist_ok=True)
    report.write_text("# passed\n", encoding="utf-8")
    run = settings.runs_dir / customer / run_id
    (run / "classifier").mkdir(parents=True)
    (run / "classifier" / "model.pt").write_bytes(b"weights")
    record = {"customer": customer, "run_id": run_id, "data_uri": data_uri}
    record["validation_report"] = str(report)
    (run / "run.json").write_text(json.dumps(record), encoding="utf-8")
    return run


@pytest.fixture
def onboarded(settings: Settings) -> ArtifactStore:
    """acme with v1 and v2 promoted, v3 withdrawn on an endpoint of another environment, v4
    assigned and never uploaded; globex beside it, which must stay untouched."""
    store = store_of(settings)
    for version in (1, 2):
        store.write_bytes(f"mme/off-mme-classifier/acme/classifier/v{version}.tar.gz", b"model")
        evidence = f"gate-evidence/acme/classifier/v{version}.json"
        store.write_bytes(evidence, b"{}")
        promote(store, "acme", {"classifier": entry(version) | {"gate_evidence": evidence}})
    store.write_bytes("mme/old-mme-classifier/acme/classifier/v3.tar.gz", b"withdrawn")
    store.write_bytes("registry/acme.version", b'{"highest": 4}\n')
    for name in ("intents.csv", "articles.jsonl"):
        store.write_bytes(f"customers/acme/{name}", b"data")
    store.write_bytes("mme/off-mme-classifier/globex/classifier/v1.tar.gz", b"theirs")
    store.write_bytes("customers/globex/intents.csv", b"theirs")
    globex = {"classifier": "globex/classifier/v1.tar.gz"}
    promote(store, "globex", {"classifier": entry(1) | {"targets": globex}})
    write_run(settings, "acme", "run-1", store.uri("customers/acme"))
    write_run(settings, "acme", "run-2", store.uri("customers/acme"))
    write_run(settings, "globex", "run-1", store.uri("customers/globex"))
    return store


def keys_of(store: ArtifactStore, customer: str) -> list[str]:
    return [k for k in store.list_keys() if f"/{customer}/" in f"/{k}" or f"/{customer}." in k]


def test_offboarding_deletes_every_version_runs_reports_and_managed_data(settings, onboarded):
    report = offboard_customer(settings, "acme")
    store = onboarded
    assert keys_of(store, "acme") == ["registry/acme.json"]
    assert json.loads(store.read_bytes("registry/acme.json")) == {
        "customer": "acme",
        "offboarded": True,
        "offboarded_at": report.offboarded_at,
        "highest_version": 4,
        "fence": 1,  # the offboarding's lock generation: no earlier run may write after it
    }
    assert not (settings.runs_dir / "acme").exists()
    assert not list((settings.reports_dir / "validation").glob("run-2*"))
    rows = {(row.what, row.where): row for row in report.rows}
    assert rows["TargetModels", "old-mme-classifier"].count == 1
    assert rows["TargetModels", "off-mme-classifier"].count == 2
    assert rows["run directories", str(settings.runs_dir / "acme")].count == 2
    assert rows["data (managed store)", store.uri("customers/acme")].action == "deleted"
    evidence = rows["gate evidence", store.uri("gate-evidence/acme/")]
    assert (evidence.count, evidence.action) == (2, "deleted")
    assert (
        "tombstone (highest version v4)" in rows["manifest", store.uri("registry/acme.json")].action
    )
    # The other customer keeps everything.
    assert len(keys_of(store, "globex")) == 3
    assert (settings.runs_dir / "globex" / "run-1" / "run.json").is_file()


def test_an_offboarded_customer_is_refused_until_reinstated_then_numbered_after_its_highest(
    settings, onboarded
):
    offboard_customer(settings, "acme")
    with pytest.raises(CustomerOffboarded, match="customer acme was offboarded at"):
        read_manifest(onboarded, "acme")
    with pytest.raises(CustomerOffboarded, match="reinstate --customer acme"):
        TargetResolver(onboarded).resolve("acme", "classifier")
    registry = read_registry(onboarded)
    assert [t.customer for t in registry.targets] == ["globex"] and not registry.unreadable

    reinstated = reinstate_customer(settings, "acme")
    assert reinstated.next_version == 5
    assert read_manifest(onboarded, "acme").models == {}
    assert assign_version(onboarded, settings, "acme") == 5
    onboarded.write_bytes("mme/off-mme-classifier/acme/classifier/v5.tar.gz", b"model")
    promote(onboarded, "acme", {"classifier": entry(5)})
    assert read_manifest(onboarded, "acme").models["classifier"].version == 5
    with pytest.raises(NotOffboarded, match="customer acme is not offboarded"):
        reinstate_customer(settings, "acme")


def test_a_run_started_after_the_offboarding_promotes_nothing(settings, onboarded):
    """A queued run starts after the offboarding: its start time no longer lets it through."""
    offboard_customer(settings, "acme")
    tombstone = onboarded.read_bytes("registry/acme.json")
    onboarded.write_bytes("mme/off-mme-classifier/acme/classifier/v5.tar.gz", b"model")
    with pytest.raises(CustomerOffboarded, match="reinstate --customer acme"):
        promote(onboarded, "acme", {"classifier": entry(5)})
    assert onboarded.read_bytes("registry/acme.json") == tombstone


def test_dry_run_lists_the_same_and_deletes_nothing(settings, onboarded):
    before = sorted(onboarded.list_keys())
    dry = offboard_customer(settings, "acme", dry_run=True)
    assert sorted(onboarded.list_keys()) == before
    assert len(list((settings.runs_dir / "acme").iterdir())) == 2
    assert {row.action for row in dry.rows if row.what == "TargetModels"} == {"would delete"}
    assert "dry run, nothing deleted" in dry.summary()
    real = offboard_customer(settings, "acme")
    assert [(r.what, r.where, r.count, r.items) for r in real.rows] == [
        (r.what, r.where, r.count, r.items) for r in dry.rows
    ]


def test_a_second_offboarding_is_a_no_op(settings, onboarded):
    first = offboard_customer(settings, "acme")
    tombstone = onboarded.read_bytes("registry/acme.json")
    again = offboard_customer(settings, "acme")
    assert again.already_offboarded and not again.rows
    assert "already offboarded" in again.summary() and first.offboarded_at in again.summary()
    assert onboarded.read_bytes("registry/acme.json") == tombstone


def test_data_outside_the_managed_store_is_kept_and_said_so(settings, onboarded, tmp_path):
    outside = tmp_path / "elsewhere" / "acme"
    outside.mkdir(parents=True)
    (outside / "intents.csv").write_text("text,intent\n", encoding="utf-8")
    write_run(settings, "acme", "run-3", str(outside))
    report = offboard_customer(settings, "acme")
    assert (outside / "intents.csv").is_file()
    kept = [row for row in report.rows if row.what == "data (outside the managed store)"]
    assert [(row.where, row.action) for row in kept] == [(str(outside), "kept: not the pipeline's")]


def test_an_unknown_customer_is_an_error_that_says_so(settings, onboarded):
    with pytest.raises(UnknownCustomer, match="no customer nobody: no manifest or tombstone"):
        offboard_customer(settings, "nobody")
    with pytest.raises(UnknownCustomer, match="no customer nobody"):
        offboard_customer(settings, "nobody", dry_run=True)
    with pytest.raises(UnknownCustomer, match="invalid customer id"):
        offboard_customer(settings, "../acme")


def test_a_run_holding_the_lock_makes_offboarding_wait_then_fail_naming_it(settings, onboarded):
    with lock_held_by_another_run(onboarded, "acme"):
        started = time.monotonic()
        with pytest.raises(ManifestError, match=r"customer acme is locked by another run.*'pid'"):
            offboard_customer(settings, "acme")
        assert time.monotonic() - started >= 1.0  # it waited lock_wait_s
        assert onboarded.exists("mme/off-mme-classifier/acme/classifier/v2.tar.gz")
    assert offboard_customer(settings, "acme").highest_version == 4


def test_the_customers_queued_onboarding_runs_are_cancelled_and_listed(
    settings, onboarded, prefect_api_url
):
    """A run queued behind a busy worker would start after the offboarding: it is cancelled.
    Another customer's queued run is left alone."""
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        flow_id = client.create_flow_from_name("onboard-customer")
        deployment = client.create_deployment(flow_id, f"offboarding-{time.monotonic_ns()}")
        queued = {
            customer: client.create_flow_run_from_deployment(
                deployment, parameters={"customer_id": customer, "data_uri": "s3://x"}
            ).id
            for customer in ("acme", "globex")
        }

        report = offboard_customer(settings, "acme")

        states = {c: client.read_flow_run(run_id).state for c, run_id in queued.items()}
    assert states["acme"] is not None and states["acme"].type.value == "CANCELLED"
    assert states["globex"] is not None and states["globex"].type.value == "SCHEDULED"
    runs = [row for row in report.rows if row.what == "onboarding runs"]
    assert len(runs) == 1 and runs[0].count == 1 and str(queued["acme"]) in runs[0].items[0]


class WritesDuringTheOffboarding:
    """A store on which a run of the customer writes its run directory and version record
    the moment the tombstone lands, as a run that lost its lock to the offboarding would."""

    def __init__(self, store: ArtifactStore, settings: Settings) -> None:
        self._store, self._settings = store, settings

    def replace_if(self, key: str, data: bytes, tag: str) -> str | None:
        written = self._store.replace_if(key, data, tag)
        if key == "registry/acme.json" and b'"offboarded"' in data:
            write_run(self._settings, "acme", "run-late", self._store.uri("customers/acme"))
            self._store.write_bytes("registry/acme.version", b'{"highest": 5}\n')
        return written

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


def test_what_a_run_writes_while_the_offboarding_deletes_is_deleted_and_listed(
    settings, onboarded, monkeypatch
):
    late_writer = WritesDuringTheOffboarding(onboarded, settings)
    monkeypatch.setattr(OFFBOARDING, "open_store", lambda *_: late_writer)
    report = offboard_customer(settings, "acme")
    assert not (settings.runs_dir / "acme").exists()
    assert not onboarded.exists("registry/acme.version")
    late = {row.what: row.items for row in report.rows if "during the offboarding" in row.what}
    assert late == {
        "run directories (written during the offboarding)": ["run-late"],
        "validation reports (written during the offboarding)": ["run-late.md"],
    }
