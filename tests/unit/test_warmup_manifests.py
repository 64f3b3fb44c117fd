"""Warm-up reads every customer's manifest; one it cannot read must not stop the others."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mme_factory.inference_client import InvocationResult
from mme_factory.manifest import ManifestError, read_manifest, registered_targets
from mme_factory.protocol import WARMUP_ATTRIBUTE
from mme_factory.settings import load_settings
from mme_factory.store import LocalStore
from tasks.deployment.warmup import warmup_models


class RecordingClient:
    """An inference client that answers every invocation and remembers it."""

    def __init__(self) -> None:
        self.invoked: list[tuple[str, str | None]] = []

    def invoke_target(
        self, endpoint: str, target_model: str, kind: str, inputs: Any, **options: Any
    ) -> InvocationResult:
        self.invoked.append((target_model, options.get("custom_attributes")))
        return InvocationResult(endpoint, target_model, {}, 5.0, 1)


def manifest(customer: str) -> bytes:
    entry = {
        "endpoint": "dev-mme-classifier",
        "targets": {"classifier": f"{customer}/classifier/v1.tar.gz"},
    }
    return json.dumps({"customer": customer, "models": {"classifier": entry}}).encode()


@pytest.mark.parametrize(
    "broken",
    [b'{"customer": "globex", "models": {', b"[]", b'{"customer": "globex", "models": {"x": 1}}'],
    ids=["truncated", "not-an-object", "malformed-entry"],
)
def test_an_unreadable_manifest_is_reported_and_the_others_are_warmed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, broken: bytes
) -> None:
    store = LocalStore(tmp_path / "store")
    store.write_bytes("registry/acme.json", manifest("acme"))
    store.write_bytes("registry/globex.json", broken)
    store.write_bytes("registry/initech.json", manifest("initech"))
    client = RecordingClient()
    monkeypatch.setattr(
        warmup_models.InferenceClient, "from_settings", classmethod(lambda *a, **k: client)
    )
    settings = load_settings(
        environ={
            "MME_FACTORY_STORE": str(store.root),
            "MME_FACTORY_STATE_DIR": str(tmp_path),
            # not this machine: no endpoint description to ask for, the settings' budget
            "MME_FACTORY_ENDPOINTS__SAGEMAKER_ENDPOINT_URL": "http://sagemaker.invalid",
        }
    )

    results = warmup_models.warm_models(settings, concurrency=2).results

    assert sorted(client.invoked) == [
        ("acme/classifier/v1.tar.gz", WARMUP_ATTRIBUTE),
        ("initech/classifier/v1.tar.gz", WARMUP_ATTRIBUTE),
    ]
    failed = [r for r in results if r.status != "ok"]
    assert [(r.customer, r.target_model) for r in failed] == [("globex", "registry/globex.json")]
    assert "unreadable manifest" in failed[0].error


def test_a_corrupt_manifest_is_refused_naming_its_key(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    store.write_bytes("registry/acme.json", b'{"customer": "acme", "models": ')
    with pytest.raises(ManifestError, match=r"registry/acme\.json is an unreadable manifest"):
        read_manifest(store, "acme")
    with pytest.raises(ManifestError, match=r"registry/acme\.json"):
        registered_targets(store)


def test_a_deeply_nested_manifest_is_unreadable_not_a_crash(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    store.write_bytes("registry/acme.json", b"[" * 100_000)
    with pytest.raises(ManifestError, match="unreadable manifest"):
        read_manifest(store, "acme")
