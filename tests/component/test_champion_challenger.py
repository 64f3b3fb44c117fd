"""The gate meets the live version: its kept evidence, a degraded retrain, rollback, fallback.

Training runs for real (tiny models, the cut sample customer); the live version is promoted
into a local store the way the onboarding flow promotes it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mme_factory.model_kinds import ModelKind
from mme_factory.naming import gate_evidence_key
from mme_factory.records import GateEvidence, ManifestEntry
from mme_factory.settings import Settings, load_settings
from mme_factory.store import open_store
from tasks.deployment.publish import promote, rollback, training_fingerprints
from tasks.training.champion import live_champion
from tasks.training.train_customer import PLAIN_STEPS, train_customer
from test_support.tiny_base_models import tiny_training_environ
from test_support.tiny_stack import shuffled_intents
from test_support.uploaded_tarballs import uploaded

CLASSIFIER = ModelKind.CLASSIFIER


def settings_for(tmp_path: Path, tiny_encoder: Path, **extra: str) -> Settings:
    environ = {
        "MME_FACTORY_STATE_DIR": str(tmp_path / "state"),
        **tiny_training_environ(tiny_encoder),
    }
    return load_settings(environ=environ | extra)


def train_classifier(settings: Settings, data: Path) -> Path:
    fingerprints = training_fingerprints(str(data), settings, [CLASSIFIER])
    run = train_customer("acme", str(data), settings, [CLASSIFIER], None, PLAIN_STEPS, fingerprints)
    return run.run.kind_dir("classifier")


def promote_run(settings: Settings, kind_dir: Path, version: int, data: Path) -> str:
    """Put the run's evidence beside the manifest and point the manifest at it, as promote does."""
    store = open_store(settings.store, settings)
    key = gate_evidence_key("acme", "classifier", version)
    store.write_bytes(key, GateEvidence.path_in(kind_dir).read_bytes())
    fingerprint = training_fingerprints(str(data), settings, [CLASSIFIER])["classifier"]
    entry = ManifestEntry(
        endpoint="dev-mme-classifier",
        version=version,
        targets={"classifier": f"acme/classifier/v{version}.tar.gz"},
        gate_evidence=key,
    )
    promote(store, "acme", uploaded(store, {"classifier": entry}), {"classifier": fingerprint})
    return key


def metadata_of(kind_dir: Path) -> dict:
    return json.loads((kind_dir / "metadata.json").read_text())


@pytest.mark.timeout(900)
def test_a_degraded_retrain_loses_to_the_live_version_which_stays_and_rollback_restores_evidence(
    tmp_path, tiny_encoder, small_acme
):
    settings = settings_for(tmp_path, tiny_encoder)
    first = train_classifier(settings, small_acme)
    first_meta = metadata_of(first)
    assert first_meta["status"] == "exported" and first_meta["served"] == "fine_tuned"
    assert first_meta["gate"]["comparison"]["champion"] == "base"
    evidence = GateEvidence.read(first)
    assert evidence.metric == "accuracy" and len(evidence.examples) == len(evidence.scores) > 20
    assert all(set(example) == {"text", "intent", "row"} for example in evidence.examples)
    v1_key = promote_run(settings, first, 1, small_acme)

    second = train_classifier(settings, shuffled_intents(small_acme, tmp_path / "degraded"))
    second_meta = metadata_of(second)
    gate = second_meta["gate"]
    assert second_meta["status"] == "champion_kept" and gate["decision"] == "champion"
    assert gate["champion_version"] == 1 and gate["comparison"]["champion"] == "v1"
    # Compared on v1's own examples, which the retrain never trained on.
    assert gate["comparison"]["examples"] == len(evidence.examples)
    assert gate["comparison"]["outcome"] == "worse" and gate["comparison"]["ci_high"] < 0
    assert "v1 stays live" in gate["reason"]
    assert not (second / "model.pt").exists() and not GateEvidence.path_in(second).exists()

    # A later version with its own evidence, then a rollback: v1 and its evidence are back.
    store = open_store(settings.store, settings)
    v2_key = gate_evidence_key("acme", "classifier", 2)
    store.write_bytes(
        v2_key,
        evidence.model_copy(update={"scores": [0.0] * len(evidence.scores)}).to_json().encode(),
    )
    entry = ManifestEntry(
        endpoint="dev-mme-classifier",
        version=2,
        gate_evidence=v2_key,
        targets={"classifier": "acme/classifier/v2.tar.gz"},
    )
    promote(store, "acme", uploaded(store, {"classifier": entry}))
    assert live_champion(settings, "acme", CLASSIFIER).evidence.scores == [0.0] * len(
        evidence.scores
    )  # type: ignore[union-attr]
    rollback(store, "acme", "classifier")
    champion = live_champion(settings, "acme", CLASSIFIER)
    assert champion is not None and champion.version == 1
    assert champion.evidence is not None and champion.evidence.scores == evidence.scores
    assert store.exists(v1_key)


@pytest.mark.timeout(900)
def test_a_fine_tuned_classifier_worse_than_its_base_is_replaced_by_the_base(
    tmp_path, tiny_encoder, small_acme
):
    # A learning rate this large wrecks the encoder in its first steps.
    settings = settings_for(
        tmp_path, tiny_encoder, MME_FACTORY_TRAINING__CLASSIFIER__LEARNING_RATE="3.0"
    )
    kind_dir = train_classifier(settings, small_acme)
    metadata = metadata_of(kind_dir)
    gate = metadata["gate"]
    assert gate["decision"] == "baseline" and gate["comparison"]["outcome"] == "worse", gate
    assert metadata["status"] == "exported" and metadata["served"] == "base"
    assert "the base model reaches the minimums and is served instead" in gate["reason"]
    evidence = GateEvidence.read(kind_dir)
    assert evidence.model == "base"
    assert sum(evidence.scores) / len(evidence.scores) == pytest.approx(
        metadata["metrics"]["base"]["accuracy"]
    )
    assert (kind_dir / "model.pt").exists()
