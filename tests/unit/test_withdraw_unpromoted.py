"""What a killed run uploaded but never promoted is withdrawn by the customer's next run."""

from __future__ import annotations

import json
from pathlib import Path

from mme_factory.settings import load_settings
from mme_factory.store import LocalStore
from tasks.deployment.publish.withdraw_unpromoted import withdraw_unpromoted


def entry(version: int) -> dict:
    return {
        "endpoint": "dev-mme-classifier",
        "version": version,
        "targets": {"classifier": f"acme/classifier/v{version}.tar.gz"},
    }


def test_only_uploads_no_manifest_entry_names_are_withdrawn(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    settings = load_settings(environ={})
    keys = [f"mme/dev-mme-classifier/acme/classifier/v{v}.tar.gz" for v in (1, 2, 3, 4)]
    keys += ["mme/dev-mme-embedding/acme/embedding-query/v4.tar.gz"]
    keys += ["mme/dev-mme-classifier/globex/classifier/v9.tar.gz"]
    for key in keys:
        store.write_bytes(key, b"tarball")
    manifest = {
        "customer": "acme",
        "models": {"classifier": entry(3)},
        "history": {"classifier": [entry(1)]},
        "retired": {"classifier": [entry(2)]},
    }
    store.write_bytes("registry/acme.json", json.dumps(manifest).encode())

    removed = withdraw_unpromoted(store, settings, "acme")

    assert sorted(removed) == [
        "mme/dev-mme-classifier/acme/classifier/v4.tar.gz",
        "mme/dev-mme-embedding/acme/embedding-query/v4.tar.gz",
    ]
    remaining = set(store.list_keys("mme/"))
    assert remaining == set(keys) - set(removed)
    assert "mme/dev-mme-classifier/globex/classifier/v9.tar.gz" in remaining


def test_a_customer_never_promoted_loses_every_upload(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    store.write_bytes("mme/dev-mme-classifier/acme/classifier/v1.tar.gz", b"tarball")
    assert withdraw_unpromoted(store, load_settings(environ={}), "acme") == [
        "mme/dev-mme-classifier/acme/classifier/v1.tar.gz"
    ]
