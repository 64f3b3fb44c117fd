"""Reading customer manifests (`registry/{customer}.json`): which TargetModel serves each kind.

The pipeline's promote step writes them; warm-up, the planner and `invoke` read them here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from mme_factory.errors import MmeFactoryError
from mme_factory.naming import manifest_key
from mme_factory.store import ArtifactStore

REGISTRY_PREFIX = "registry/"


class ManifestError(MmeFactoryError):
    """A manifest is unreadable, the customer is locked, or there is nothing to roll back to."""


@dataclass(frozen=True)
class RegisteredTarget:
    customer: str
    kind: str
    endpoint: str
    target_model: str


def read_manifest(store: ArtifactStore, customer: str) -> dict[str, Any]:
    """The customer's manifest, or an empty one when nothing was promoted yet."""
    key = manifest_key(customer)
    if not store.exists(key):
        return {"customer": customer, "models": {}, "history": {}}
    return json.loads(store.read_bytes(key))


def registered_targets(store: ArtifactStore) -> list[RegisteredTarget]:
    """Every current TargetModel in every customer manifest under `registry/`."""
    targets = []
    for key in store.list_keys(REGISTRY_PREFIX):
        if not key.endswith(".json"):
            continue
        manifest = json.loads(store.read_bytes(key))
        for kind, entry in sorted(manifest.get("models", {}).items()):
            for target in sorted(entry["targets"].values()):
                targets.append(
                    RegisteredTarget(manifest["customer"], kind, entry["endpoint"], target)
                )
    return targets
