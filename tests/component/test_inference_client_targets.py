"""Which TargetModel the inference client calls: the customer manifest, cached and kept current.

Against both stores: a local directory and the S3 API (moto's server).
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from mme_factory.aws_clients import s3_client
from mme_factory.inference_client import TargetNotRegistered, TargetResolver
from mme_factory.manifest import ManifestError
from mme_factory.store import ArtifactStore, LocalStore, open_store
from tasks.deployment.publish.promote import promote, rollback
from test_support.moto_aws import ensure_bucket, moto_settings
from test_support.uploaded_tarballs import uploaded

BUCKET = "inference-client-targets"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Any) -> ArtifactStore:
    if request.param == "local":
        return LocalStore(tmp_path / "bucket")
    moto = request.getfixturevalue("moto_server")
    monkeypatch = request.getfixturevalue("monkeypatch")
    settings = moto_settings(
        monkeypatch,
        moto.url,
        tmp_path / "state",
        STORE=f"s3://{BUCKET}/t{time.monotonic_ns() % 10**9}",
    )
    ensure_bucket(s3_client(settings), BUCKET)
    return open_store(settings.store, settings)


def entry(kind: str, version: int, roles: tuple[str, ...] = ()) -> dict[str, Any]:
    targets = {role: f"acme/{kind}-{role}/v{version}.tar.gz" for role in roles} or {
        kind: f"acme/{kind}/v{version}.tar.gz"
    }
    return {"endpoint": f"dev-mme-{kind}", "version": version, "targets": targets}


def test_roles_resolve_to_their_target_models(store: ArtifactStore) -> None:
    promote(
        store, "acme", uploaded(store, {"embedding": entry("embedding", 3, ("query", "article"))})
    )
    resolver = TargetResolver(store)
    article = resolver.resolve("acme", "embedding", "article")
    assert (article.endpoint, article.target_model) == (
        "dev-mme-embedding",
        "acme/embedding-article/v3.tar.gz",
    )
    assert resolver.resolve("acme", "embedding").role == "query"  # the kind's first role
    with pytest.raises(TargetNotRegistered, match=r"no 'summary' TargetModel.*'article', 'query'"):
        resolver.resolve("acme", "embedding", "summary")


def test_a_customer_without_a_manifest_is_named_with_the_kind(store: ArtifactStore) -> None:
    with pytest.raises(TargetNotRegistered, match=r"customer globex has no manifest .*classifier"):
        TargetResolver(store).resolve("globex", "classifier")


def test_a_customer_without_the_kind_is_named_with_the_kinds_it_has(store: ArtifactStore) -> None:
    promote(store, "acme", uploaded(store, {"classifier": entry("classifier", 1)}))
    with pytest.raises(
        TargetNotRegistered, match=r"customer acme has no autocomplete model .*serves: classifier"
    ):
        TargetResolver(store).resolve("acme", "autocomplete")


def test_a_rollback_is_seen_once_the_refresh_interval_has_passed(store: ArtifactStore) -> None:
    promote(store, "acme", uploaded(store, {"classifier": entry("classifier", 1)}))
    promote(store, "acme", uploaded(store, {"classifier": entry("classifier", 2)}))
    clock = Clock()
    resolver = TargetResolver(store, refresh_s=2.0, clock=clock)
    assert resolver.resolve("acme", "classifier").version == 2
    rollback(store, "acme", "classifier")
    clock.now += 1.9
    assert resolver.resolve("acme", "classifier").version == 2  # the cached copy, still fresh
    clock.now += 0.2
    rolled_back = resolver.resolve("acme", "classifier")
    assert (rolled_back.version, rolled_back.target_model) == (1, "acme/classifier/v1.tar.gz")


def test_a_manifest_promoted_after_a_miss_is_found_after_the_interval(
    store: ArtifactStore,
) -> None:
    clock = Clock()
    resolver = TargetResolver(store, refresh_s=2.0, clock=clock)
    with pytest.raises(TargetNotRegistered):
        resolver.resolve("acme", "classifier")
    promote(store, "acme", uploaded(store, {"classifier": entry("classifier", 1)}))
    clock.now += 2.0
    assert resolver.resolve("acme", "classifier").version == 1


def test_an_unreadable_manifest_is_an_error_naming_its_location(store: ArtifactStore) -> None:
    store.write_bytes("registry/acme.json", b"{not json")
    with pytest.raises(ManifestError, match=r"registry/acme\.json is an unreadable manifest"):
        TargetResolver(store).resolve("acme", "classifier")
