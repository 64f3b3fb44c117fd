"""Which customers a fleet run covers, and which of them it retrains, on both stores."""

from __future__ import annotations

import pytest

from mme_factory.aws_clients import s3_client
from mme_factory.model_kinds import ModelKind
from mme_factory.naming import manifest_key
from mme_factory.records import Tombstone
from mme_factory.settings import load_settings
from mme_factory.store import open_store
from tasks.deployment.publish.promote import promote
from tasks.deployment.publish.training_fingerprint import training_fingerprints
from tasks.fleet import UNCHANGED, FleetCustomer, FleetError, check_fleet, fleet_customers
from test_support.moto_aws import moto_settings, remove_bucket
from test_support.paths import ACME

CLASSIFIER = [ModelKind.CLASSIFIER]


def write_customer(
    prefix: str, name: str, settings, files=("intents.csv", "articles.jsonl", "pairs.csv")
) -> None:
    store = open_store(f"{prefix.rstrip('/')}/{name}", settings)
    for file in files:
        store.write_bytes(file, (ACME / file).read_bytes())


def private_environ(tmp_path) -> dict[str, str]:
    return {
        "MME_FACTORY_STATE_DIR": str(tmp_path / "state"),
        "MME_FACTORY_STORE": str(tmp_path / "store"),
    }


@pytest.fixture
def settings(tmp_path):
    """A private state directory and store: these tests write manifests."""
    return load_settings(environ=private_environ(tmp_path))


@pytest.fixture
def s3_settings(moto_server, tmp_path, monkeypatch):
    settings = moto_settings(
        monkeypatch, moto_server.url, tmp_path / "state", STORE="s3://fleet-artifacts"
    )
    client = s3_client(settings)
    client.create_bucket(Bucket="fleet-data")
    client.create_bucket(Bucket="fleet-artifacts")
    yield settings
    for bucket in ("fleet-data", "fleet-artifacts"):
        remove_bucket(client, bucket)


def prefix_and_settings(request, tmp_path, settings):
    if request.param == "s3":
        return "s3://fleet-data/customers/", request.getfixturevalue("s3_settings")
    return str(tmp_path / "customers"), settings


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.integration)])
def data_prefix(request, tmp_path, settings):
    return prefix_and_settings(request, tmp_path, settings)


def test_each_sub_folder_of_the_prefix_is_a_customer(data_prefix):
    prefix, settings = data_prefix
    for name in ("globex", "acme"):
        write_customer(prefix, name, settings)
    open_store(prefix, settings).write_bytes("README.txt", b"not a customer")
    found = fleet_customers(None, prefix, settings)
    assert [c.customer_id for c in found] == ["acme", "globex"]
    assert found[0].data_uri == open_store(prefix, settings).uri("acme")
    assert sorted(open_store(found[0].data_uri, settings).list_keys()) == [
        "articles.jsonl",
        "intents.csv",
        "pairs.csv",
    ]


def test_an_empty_prefix_says_where_the_customers_go(data_prefix):
    prefix, settings = data_prefix
    with pytest.raises(FleetError, match="<customer-id>"):
        fleet_customers(None, prefix, settings)


def test_the_settings_prefix_is_the_default(tmp_path):
    prefix = str(tmp_path / "customers")
    environ = private_environ(tmp_path)
    settings = load_settings(environ={**environ, "MME_FACTORY_FLEET__DATA_PREFIX": prefix})
    write_customer(prefix, "acme", settings)
    assert [c.customer_id for c in fleet_customers(None, None, settings)] == ["acme"]
    with pytest.raises(FleetError, match=r"fleet\.data_prefix"):
        fleet_customers(None, None, load_settings(environ=environ))


def test_a_customer_listed_twice_is_refused(settings):
    twice = [FleetCustomer(customer_id="acme", data_uri=str(ACME))] * 2
    with pytest.raises(FleetError, match="more than once: acme"):
        fleet_customers(twice, None, settings)


def promote_as_trained(settings, customer: FleetCustomer, kinds=CLASSIFIER) -> None:
    fingerprints = training_fingerprints(customer.data_uri, settings, kinds)
    entries = {
        kind: {"endpoint": f"dev-mme-{kind}", "version": 1, "targets": {}} for kind in fingerprints
    }
    promote(
        open_store(settings.store, settings),
        customer.customer_id,
        entries,
        {kind: f.to_dict() for kind, f in fingerprints.items()},
    )


@pytest.fixture
def fleet(tmp_path, settings):
    prefix = str(tmp_path / "customers")
    for name in ("acme", "globex"):
        write_customer(prefix, name, settings)
    return prefix, fleet_customers(None, prefix, settings)


def verdicts(checks) -> dict[str, str]:
    return {c.customer.customer_id: f"{c.verdict}: {c.reason}" for c in checks}


def test_unchanged_customers_are_skipped_and_changed_data_is_retrained(fleet, settings):
    prefix, customers = fleet
    for customer in customers:
        promote_as_trained(settings, customer)
    assert verdicts(check_fleet(customers, settings, CLASSIFIER)) == {
        "acme": f"skip: {UNCHANGED}",
        "globex": f"skip: {UNCHANGED}",
    }
    globex = open_store(f"{prefix}/globex", settings)
    globex.write_bytes("intents.csv", globex.read_bytes("intents.csv") + b"one more,refund\n")
    assert verdicts(check_fleet(customers, settings, CLASSIFIER)) == {
        "acme": f"skip: {UNCHANGED}",
        "globex": "retrain: classifier: data changed",
    }
    assert verdicts(check_fleet(customers, settings, CLASSIFIER, force=True)) == {
        "acme": "retrain: forced",
        "globex": "retrain: forced",
    }


def test_changed_settings_and_new_kinds_are_retrained(fleet, settings, tmp_path):
    _, customers = fleet
    promote_as_trained(settings, customers[0])
    changed = load_settings(
        environ={**private_environ(tmp_path), "MME_FACTORY_TRAINING__CLASSIFIER__EPOCHS": "7"}
    )
    assert verdicts(check_fleet(customers[:1], changed, CLASSIFIER)) == {
        "acme": "retrain: classifier: settings changed"
    }
    # With no kinds named, every kind the data supports: embedding too, never promoted.
    assert verdicts(check_fleet(customers[:1], settings)) == {
        "acme": "retrain: embedding: no version yet"
    }


def test_an_offboarded_customer_is_skipped_even_when_forced(fleet, settings):
    """A tombstone is read before anything else: `force` never brings a customer back."""
    _, customers = fleet
    store = open_store(settings.store, settings)
    offboarded = Tombstone(
        customer="acme", offboarded_at="2026-01-05T03:00:00+00:00", highest_version=3
    )
    store.write_bytes(manifest_key("acme"), offboarded.to_json().encode())
    for force in (False, True):
        found = verdicts(check_fleet(customers[:1], settings, CLASSIFIER, force=force))
        assert found["acme"].startswith("skip: offboarded at 2026-01-05T03:00:00+00:00"), found
        assert "mme-factory reinstate --customer acme" in found["acme"]


def test_an_invalid_customer_fails_its_check_only(fleet, settings):
    _, customers = fleet
    bad = FleetCustomer(customer_id="Not_Valid", data_uri=customers[0].data_uri)
    found = verdicts(check_fleet([bad, customers[1]], settings, CLASSIFIER))
    assert found["Not_Valid"].startswith("failed: ValueError: invalid customer id")
    assert found["globex"] == "retrain: classifier: no version yet"
