"""A conditional write whose answer is lost, against a real S3 API (moto's server mode).

botocore repeats a request whose connection closed before the answer came; when the first
request landed, the repeat of a conditional put finds the object changed and is answered 412.
The store recognises its own write, and a failed run reads the manifest before withdrawing.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from botocore.exceptions import ConnectionClosedError
from botocore.httpsession import URLLib3Session

from mme_factory.aws_clients import s3_client
from mme_factory.manifest import read_manifest
from mme_factory.store import S3Store, open_store
from tasks.deployment.publish.promote import promote
from tasks.deployment.publish.publish_models import withdraw_uploads
from tasks.deployment.publish.register_mme import Registration
from test_support.moto_aws import ensure_bucket, moto_settings

pytestmark = pytest.mark.integration
BUCKET = "lost-answers"
MANIFEST = "registry/acme.json"


class AnswerLost:
    """Sends the first conditional put of a key itself, then drops the connection's answer."""

    def __init__(self, key: str) -> None:
        self.key, self.dropped = key, 0
        self._session = URLLib3Session()

    def __call__(self, request: Any, **_: Any) -> None:
        conditional = "If-Match" in request.headers or "If-None-Match" in request.headers
        if self.dropped or not conditional or not request.url.split("?")[0].endswith(self.key):
            return None
        self._session.send(request)
        self.dropped += 1
        raise ConnectionClosedError(endpoint_url=request.url)


@pytest.fixture
def settings(moto_server, tmp_path, monkeypatch):
    prefix = f"t{time.monotonic_ns()}"
    settings = moto_settings(
        monkeypatch, moto_server.url, tmp_path / "state", STORE=f"s3://{BUCKET}/{prefix}"
    )
    ensure_bucket(s3_client(settings), BUCKET)
    return settings


def entry(version: int) -> dict[str, Any]:
    target = f"acme/classifier/v{version}.tar.gz"
    return {"endpoint": "dev-mme-classifier", "version": version, "targets": {"classifier": target}}


def registration(store: S3Store, version: int) -> Registration:
    return Registration(
        customer="acme",
        kind="classifier",
        role=None,
        version=version,
        endpoint="dev-mme-classifier",
        target_model=f"acme/classifier/v{version}.tar.gz",
        model_data_url=store.uri("mme/dev-mme-classifier/"),
        sha256="0" * 64,
        size_bytes=5,
        code_version="test",
        uploaded=True,
        endpoint_created=False,
    )


def test_a_promote_whose_answer_was_lost_is_its_own_success(settings):
    store = open_store(settings.store, settings)
    assert isinstance(store, S3Store)
    for version in (1, 2):
        store.write_bytes(f"mme/dev-mme-classifier/acme/classifier/v{version}.tar.gz", b"model")
    promote(store, "acme", {"classifier": entry(1)})
    lost = AnswerLost(store.uri(MANIFEST).split(f"{BUCKET}/", 1)[1])
    store.client.meta.events.register("before-send.s3.PutObject", lost)

    promote(store, "acme", {"classifier": entry(2)})

    assert lost.dropped == 1
    assert read_manifest(store, "acme").models["classifier"].version == 2


def test_a_failed_run_keeps_the_uploads_a_landed_promote_points_at(settings):
    """Whatever failed after the promote's write, the tarballs the manifest names stay."""
    store = open_store(settings.store, settings)
    assert isinstance(store, S3Store)
    store.write_bytes("mme/dev-mme-classifier/acme/classifier/v1.tar.gz", b"model")
    promote(store, "acme", {"classifier": entry(1)})
    store.write_bytes("mme/dev-mme-classifier/acme/classifier/v2.tar.gz", b"never promoted")

    removed = withdraw_uploads.fn([registration(store, 1), registration(store, 2)], settings)

    assert removed == ["mme/dev-mme-classifier/acme/classifier/v2.tar.gz"]
    assert store.exists("mme/dev-mme-classifier/acme/classifier/v1.tar.gz")
