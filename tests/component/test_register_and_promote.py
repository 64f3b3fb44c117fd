"""Registration on a SageMaker API and the manifest, against moto's server (S3 + SageMaker)."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from mme_factory.aws_clients import s3_client, sagemaker_client
from mme_factory.manifest import ManifestError, read_manifest
from mme_factory.naming import TargetModelKey, endpoint_name_for
from mme_factory.serving_image.image_uri import serving_image_uri, stock_image_uri
from mme_factory.settings import load_settings
from mme_factory.store import LocalStore, open_store
from tasks.deployment.customer_lock import customer_lock
from tasks.deployment.publish.promote import promote, rollback
from tasks.deployment.publish.register_mme import (
    RegistrationError,
    ensure_endpoint,
    register_mme,
    upload_tarball,
)
from tasks.deployment.version_numbers import assign_version
from tasks.packaging.package_triton import PackagedModel
from test_support.moto_aws import SAGEMAKER, ensure_bucket, moto_settings

pytestmark = pytest.mark.integration
BUCKET = "mme-artifacts"


@pytest.fixture
def aws(moto_server, tmp_path, monkeypatch):
    settings = moto_settings(
        monkeypatch,
        moto_server.url,
        tmp_path / "state",
        SAGEMAKER,
        ENV=f"t{time.monotonic_ns() % 10**8}",
        STORE=f"s3://{BUCKET}",
        SAGEMAKER__WAIT_DELAY_S="1",
        SAGEMAKER__WAIT_MAX_ATTEMPTS="5",
    )
    ensure_bucket(s3_client(settings), BUCKET)
    return settings


@pytest.fixture(params=["local", "s3"])
def store(request, tmp_path):
    """A local directory, then the S3 API: each test that takes it runs against both."""
    if request.param == "local":
        return LocalStore(tmp_path / "bucket")
    aws = request.getfixturevalue("aws")
    return open_store(aws.store, aws)


@pytest.fixture
def customer() -> str:
    """A customer of this test alone: the S3 bucket lives as long as the session."""
    return f"c{time.monotonic_ns() % 10**8}"


def tarball(tmp_path: Path, content: bytes) -> tuple[Path, str]:
    import hashlib

    path = tmp_path / f"{hashlib.sha256(content).hexdigest()[:8]}.tar.gz"
    path.write_bytes(content)
    return path, hashlib.sha256(content).hexdigest()


def test_image_uri_is_resolved_by_the_sagemaker_sdk(aws):
    uri = stock_image_uri(aws, aws.sagemaker.instance_types["embedding"])
    assert uri == "763104351884.dkr.ecr.us-east-1.amazonaws.com/sagemaker-tritonserver:24.09-py3"


def test_register_creates_the_endpoint_once_and_uploads(aws, tmp_path):
    path, digest = tarball(tmp_path, b"model bytes")
    package = PackagedModel(
        customer="acme",
        kind="classifier",
        role=None,
        target="classifier",
        version="run-1",
        entry_model="classifier",
        triton_models=["classifier"],
        code_version="v1",
        tarball=str(path),
        sha256=digest,
        size_bytes=path.stat().st_size,
    )
    first = register_mme(package, 1, aws)
    assert first.endpoint_created and first.uploaded
    assert first.endpoint == endpoint_name_for("classifier", aws.env)
    assert first.target_model == "acme/classifier/v1.tar.gz"
    assert first.model_data_url == f"s3://{BUCKET}/mme/{first.endpoint}/"
    described = sagemaker_client(aws).describe_model(ModelName=first.endpoint)
    assert described["PrimaryContainer"]["Mode"] == "MultiModel"
    assert described["PrimaryContainer"]["ModelDataUrl"] == first.model_data_url
    serving = serving_image_uri(aws, aws.sagemaker.instance_types["classifier"])
    assert described["PrimaryContainer"]["Image"] == serving
    again = register_mme(package, 1, aws)
    assert not again.endpoint_created and not again.uploaded
    store = open_store(aws.store, aws)
    assert store.read_bytes(f"mme/{first.endpoint}/acme/classifier/v1.tar.gz") == b"model bytes"
    assert assign_version(store, aws, "acme") == 2
    assert assign_version(store, aws, "other") == 1


def test_different_bytes_for_an_existing_version_are_refused(aws, tmp_path):
    store = open_store(aws.store, aws)
    path, digest = tarball(tmp_path, b"one")
    assert upload_tarball(store, "mme/x/acme/classifier/v7.tar.gz", path, digest)
    other, other_digest = tarball(tmp_path, b"two")
    with pytest.raises(RegistrationError, match="versions are immutable"):
        upload_tarball(store, "mme/x/acme/classifier/v7.tar.gz", other, other_digest)


def test_large_tarball_goes_up_in_parts_and_keeps_its_hash(aws, tmp_path):
    path, digest = tarball(tmp_path, b"x" * (9 * 1024 * 1024))
    store = open_store(aws.store, aws)
    assert upload_tarball(store, "mme/x/acme/autocomplete/v1.tar.gz", path, digest)
    assert store.stored_sha256("mme/x/acme/autocomplete/v1.tar.gz") == digest


def test_failed_endpoint_is_reported_not_waited_on(aws):
    class FailedEndpoint:
        def describe_endpoint(self, EndpointName):
            return {"EndpointStatus": "Failed", "FailureReason": "image pull failed"}

    with pytest.raises(RegistrationError, match="Failed: image pull failed"):
        ensure_endpoint(FailedEndpoint(), aws, "embedding", "s3://b/mme/x/")


def entry(version: int) -> dict:
    return {"version": version, "targets": {"classifier": f"acme/classifier/v{version}.tar.gz"}}


def test_promote_and_rollback(store, customer):
    promote(store, customer, {"classifier": entry(1)})
    promote(store, customer, {"classifier": entry(2)})
    assert read_manifest(store, customer).models["classifier"].version == 2
    rolled = rollback(store, customer, "classifier")
    assert rolled.models["classifier"].version == 1
    assert rolled.retired["classifier"][0].version == 2
    with pytest.raises(ManifestError, match="no previous classifier version"):
        rollback(store, customer, "classifier")


def test_concurrent_promotions_do_not_lose_updates(store, customer):
    errors: list[Exception] = []

    def promote_under_lock(kind: str) -> None:
        try:
            with customer_lock(store, customer, wait_s=20):
                promote(store, customer, {kind: entry(1)})
                time.sleep(0.2)
        except Exception as error:
            errors.append(error)

    threads = [
        threading.Thread(target=promote_under_lock, args=(k,))
        for k in ("embedding", "classifier", "autocomplete")
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors
    assert set(read_manifest(store, customer).models) == {
        "embedding",
        "classifier",
        "autocomplete",
    }


def test_a_held_lock_makes_the_second_run_fail_clearly(tmp_path):
    store = LocalStore(tmp_path / "bucket")
    with (
        customer_lock(store, "acme", wait_s=1),
        pytest.raises(ManifestError, match="locked"),
        customer_lock(store, "acme", wait_s=0.3),
    ):
        pass
    with customer_lock(store, "acme", wait_s=0.3):
        assert json.loads(store.read_bytes("registry/acme.lock"))["pid"] > 0


def test_target_model_keys():
    key = TargetModelKey("acme", "embedding", "query", 3)
    assert str(key) == "acme/embedding-query/v3.tar.gz"
    assert TargetModelKey.parse("acme/classifier/v12.tar.gz").version == 12
    with pytest.raises(ValueError, match="not a TargetModel key"):
        TargetModelKey.parse("../acme/classifier/v1.tar.gz")


def test_a_withdrawn_version_number_is_never_reused(tmp_path):
    store = LocalStore(tmp_path / "bucket")
    settings = load_settings(environ={"MME_FACTORY_STATE_DIR": str(tmp_path / "state")})
    key = f"mme/{endpoint_name_for('classifier', settings.env)}/acme/classifier/v1.tar.gz"
    assert assign_version(store, settings, "acme") == 1
    store.write_bytes(key, b"bytes the smoke test rejected")
    store.delete(key)  # the failed run withdraws its upload
    assert assign_version(store, settings, "acme") == 2
    assert assign_version(store, settings, "acme") == 3  # a run killed before uploading anything
    assert assign_version(store, settings, "other") == 1


class WrittenMeanwhile:
    """A store where another run rewrites the manifest right after this run has read it."""

    def __init__(self, store, customer: str) -> None:
        self._store, self._key = store, f"registry/{customer}.json"
        self.other = json.dumps({"customer": customer, "models": {}, "by": "other"}).encode()

    def _interfere(self, key: str) -> None:
        if key == self._key and self.other is not None:
            other, self.other = self.other, None
            self._store.write_bytes(key, other)

    def read_bytes(self, key):
        data = self._store.read_bytes(key)
        self._interfere(key)
        return data

    def read_versioned(self, key):
        found = self._store.read_versioned(key)
        self._interfere(key)
        return found

    def __getattr__(self, name):
        return getattr(self._store, name)


@pytest.mark.parametrize("existing", [True, False], ids=["update", "first-promotion"])
def test_a_manifest_written_since_it_was_read_is_not_overwritten(store, customer, existing):
    if existing:
        promote(store, customer, {"classifier": entry(1)})
    with pytest.raises(ManifestError, match="changed by another run"):
        promote(WrittenMeanwhile(store, customer), customer, {"classifier": entry(2)})
    assert json.loads(store.read_bytes(f"registry/{customer}.json"))["by"] == "other"


def test_concurrent_version_assignments_never_hand_out_one_number_twice(aws, store, customer):
    assigned: list[int] = []
    errors: list[Exception] = []

    def assign_several() -> None:
        try:
            for _ in range(8):
                assigned.append(assign_version(store, aws, customer))
        except Exception as error:
            errors.append(error)

    threads = [threading.Thread(target=assign_several) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors
    assert sorted(assigned) == list(range(1, 33))
