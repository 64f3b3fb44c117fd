"""A kind's training fingerprint changes with what that kind trains from, and nothing else."""

from __future__ import annotations

from mme_factory.manifest import promoted_fingerprint, read_manifest
from mme_factory.model_kinds import ModelKind
from mme_factory.records import ManifestEntry, TrainingFingerprint
from mme_factory.settings import load_settings
from mme_factory.store import LocalStore
from tasks.deployment.publish.promote import promote
from tasks.deployment.publish.training_fingerprint import (
    inference_code_version,
    training_fingerprints,
)


def test_changing_replies_changes_only_the_autocomplete_data_hash(acme_copy, settings):
    before = training_fingerprints(str(acme_copy), settings)
    with (acme_copy / "replies.jsonl").open("a", encoding="utf-8") as replies:
        replies.write('{"context": "Customer: hi", "reply": "Hello!"}\n')
    after = training_fingerprints(str(acme_copy), settings)
    assert set(before) == {"embedding", "classifier", "autocomplete"}
    assert before["autocomplete"].data_sha256 != after["autocomplete"].data_sha256
    assert before["classifier"] == after["classifier"]
    assert before["embedding"] == after["embedding"]


def test_a_kinds_training_setting_changes_only_its_settings_hash(acme_copy, tmp_path):
    state = {"MME_FACTORY_STATE_DIR": str(tmp_path / "state")}
    default = training_fingerprints(str(acme_copy), load_settings(environ=state))
    epochs = load_settings(environ={**state, "MME_FACTORY_TRAINING__CLASSIFIER__EPOCHS": "9"})
    seed = load_settings(environ={**state, "MME_FACTORY_TRAINING__SEED": "7"})
    threads = load_settings(environ={**state, "MME_FACTORY_TRAINING__TORCH_THREADS": "1"})
    changed = training_fingerprints(str(acme_copy), epochs)
    assert changed["classifier"].settings_sha256 != default["classifier"].settings_sha256
    assert changed["embedding"].settings_sha256 == default["embedding"].settings_sha256
    reseeded = training_fingerprints(str(acme_copy), seed)
    assert all(reseeded[kind].settings_sha256 != default[kind].settings_sha256 for kind in default)
    assert training_fingerprints(str(acme_copy), threads) == default


def test_requested_kinds_are_the_ones_fingerprinted(acme_copy, settings):
    found = training_fingerprints(str(acme_copy), settings, [ModelKind.CLASSIFIER])
    assert list(found) == ["classifier"]
    assert found["classifier"].inference_code_version == inference_code_version(
        ModelKind.CLASSIFIER
    )


def test_promote_records_the_fingerprint_with_the_packaged_code_version(tmp_path):
    store = LocalStore(tmp_path / "store")
    entry = ManifestEntry(endpoint="dev-mme-classifier", version=1, code_version="v1", targets={})
    fingerprint = TrainingFingerprint(
        data_sha256="d", settings_sha256="s", inference_code_version="v9"
    )
    promote(store, "acme", {"classifier": entry}, {"classifier": fingerprint})
    manifest = read_manifest(store, "acme")
    assert promoted_fingerprint(manifest, "classifier") == TrainingFingerprint(
        data_sha256="d", settings_sha256="s", inference_code_version="v1"
    )
    assert promoted_fingerprint(manifest, "embedding") is None
