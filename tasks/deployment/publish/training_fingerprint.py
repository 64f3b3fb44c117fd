"""What a promoted model was trained from: its data, its training settings, its serving code.

The manifest keeps one fingerprint per promoted kind, so that a later run can tell whether
training again would change anything. Each part is a sha256 (or a version name) that depends
only on what training of that kind reads:

- data: the kind's data files (the ones it trains from, in the kind's own fixed order);
- settings: the canonical JSON of the kind's training section and the shared fields it uses;
- inference code: the Python-backend code version packaging puts beside the model.
"""

from __future__ import annotations

import hashlib
import json

from prefect import task
from prefect.cache_policies import NO_CACHE

from mme_factory.model_kinds import CUSTOMER_FILES, ModelKind, describe, supported_kinds
from mme_factory.records import TrainingFingerprint
from mme_factory.settings import Settings
from mme_factory.store import ArtifactStore, open_store
from tasks.packaging.triton_layout import read_layout

# Shared training fields that change what every kind learns; threads and device do not.
SHARED_TRAINING_FIELDS = ("seed", "held_out_fraction")


def present_files(store: ArtifactStore) -> set[str]:
    return {name for name in CUSTOMER_FILES if store.exists(name)}


def kind_data_sha256(store: ArtifactStore, kind: ModelKind, present: set[str]) -> str:
    """The sha256 over the names, sizes and bytes of the files `kind` trains from."""
    digest = hashlib.sha256()
    for name in describe(kind).files_needed(present):
        data = store.read_bytes(name) if name in present else b""
        digest.update(f"{name}\0{len(data)}\0".encode() + data)
    return digest.hexdigest()


def kind_settings_sha256(kind: ModelKind, settings: Settings) -> str:
    training = settings.training.model_dump(mode="json")
    relevant = {name: training[name] for name in (*SHARED_TRAINING_FIELDS, kind.value)}
    canonical = json.dumps(relevant, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def inference_code_version(kind: ModelKind) -> str:
    """The code version packaging uses when none is requested: the kind's latest."""
    return read_layout(describe(kind).layout).resolve_code_version(None)


def kinds_to_train(present: set[str], kinds: list[ModelKind] | None) -> list[ModelKind]:
    """The kinds an onboarding run trains: those requested, else every kind the data supports."""
    return [ModelKind(kind) for kind in kinds] if kinds else supported_kinds(present)


def training_fingerprints(
    data_uri: str, settings: Settings, kinds: list[ModelKind] | None = None
) -> dict[str, TrainingFingerprint]:
    """The fingerprint each kind would have if it were trained from `data_uri` now."""
    store = open_store(data_uri, settings)
    present = present_files(store)
    return {
        str(kind): TrainingFingerprint(
            data_sha256=kind_data_sha256(store, kind, present),
            settings_sha256=kind_settings_sha256(kind, settings),
            inference_code_version=inference_code_version(kind),
        )
        for kind in kinds_to_train(present, kinds)
    }


@task(name="training-fingerprints", cache_policy=NO_CACHE)
def training_fingerprints_task(
    data_uri: str, settings: Settings, kinds: list[ModelKind] | None = None
) -> dict[str, TrainingFingerprint]:
    """Fingerprint the data before training reads it: a later change then means retraining."""
    return training_fingerprints(data_uri, settings, kinds)
