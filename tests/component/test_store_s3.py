"""Validation and the artifact store against a real S3 API (moto's server mode)."""

from __future__ import annotations

import pytest

from mme_factory.aws_clients import s3_client
from mme_factory.errors import StoreError
from mme_factory.store import LocalStore, checked_key, open_store
from tasks.data.validate_data import validate_customer_data
from test_support.moto_aws import moto_settings, remove_bucket
from test_support.paths import ACME

pytestmark = pytest.mark.integration


@pytest.fixture
def s3_settings(moto_server, tmp_path, monkeypatch):
    return moto_settings(
        monkeypatch, moto_server.url, tmp_path / "state", STORE="s3://customer-data"
    )


@pytest.fixture
def bucket(s3_settings):
    client = s3_client(s3_settings)
    client.create_bucket(Bucket="customer-data")
    yield client
    remove_bucket(client, "customer-data")


def test_validate_reads_customer_data_from_s3(s3_settings, bucket):
    store = open_store("s3://customer-data/customers/acme", s3_settings)
    for path in ACME.iterdir():
        store.write_bytes(path.name, path.read_bytes())
    assert sorted(store.list_keys()) == sorted(p.name for p in ACME.iterdir())
    summary = validate_customer_data("s3://customer-data/customers/acme", s3_settings)
    assert summary.passed
    assert summary.data_uri == "s3://customer-data/customers/acme"
    assert summary.rows["replies.jsonl"] == 1200


def test_s3_prefix_without_data_fails_validation(s3_settings, bucket):
    summary = validate_customer_data("s3://customer-data/customers/nobody", s3_settings)
    assert [result.rule for result in summary.failures] == ["missing_file"]


def test_missing_bucket_is_a_store_error(s3_settings):
    store = open_store("s3://no-such-bucket/x", s3_settings)
    with pytest.raises(StoreError, match="no-such-bucket"):
        store.read_bytes("intents.csv")


def test_an_upload_to_a_missing_bucket_is_a_store_error(s3_settings, tmp_path):
    store = open_store("s3://no-such-bucket/x", s3_settings)
    tarball = tmp_path / "v1.tar.gz"
    tarball.write_bytes(b"model")
    with pytest.raises(StoreError, match="bucket no-such-bucket does not exist"):
        store.put_file("acme/classifier/v1.tar.gz", tarball, "0" * 64)


def test_s3_and_local_store_lay_out_keys_alike(s3_settings, bucket, tmp_path):
    s3 = open_store("s3://customer-data", s3_settings)
    local = LocalStore(tmp_path / "bucket")
    for store in (s3, local):
        store.write_bytes("registry/acme.json", b"{}")
        store.write_bytes("mme/dev-mme-embedding/acme/embedding-query/v1.tar.gz", b"x")
        assert store.exists("registry/acme.json")
        assert not store.exists("registry/other.json")
    assert list(s3.list_keys("mme/")) == list(local.list_keys("mme/"))


@pytest.mark.parametrize("key", ["", "/etc/passwd", "../outside", "a/../../b", "a\\b"])
def test_keys_that_leave_the_store_are_refused(key):
    with pytest.raises(StoreError, match="invalid store key"):
        checked_key(key)


def test_sha256_of_an_object_without_it_in_metadata_is_hashed_once_per_version(s3_settings, bucket):
    store = open_store("s3://customer-data", s3_settings)
    key = "mme/dev-mme-classifier/acme/classifier/v1.tar.gz"
    store.write_bytes(key, b"first")
    reads = []
    original = store.client.get_object
    store.client.get_object = lambda **kw: reads.append(kw) or original(**kw)
    first = store.stored_sha256(key)
    assert store.stored_sha256(key) == first
    assert len(reads) == 1
    store.write_bytes(key, b"second")
    assert store.stored_sha256(key) != first
    assert len(reads) == 2
