"""Which TargetModel serves a customer's kind and role now: its manifest, cached, kept current.

A cached manifest is trusted for `refresh_s`; after that the next lookup compares the key's
sha256 (a HEAD on S3, where the ETag is known) with the cached copy's and reads the manifest
again only when it changed. A promote or a rollback is seen within `refresh_s`.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mme_factory.errors import StoreError
from mme_factory.inference_client.errors import TargetNotRegistered
from mme_factory.manifest import ManifestError, parse_manifest
from mme_factory.model_kinds import describe
from mme_factory.naming import manifest_key
from mme_factory.store import ArtifactStore, KeyMissing

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Target:
    """One TargetModel a customer's manifest serves."""

    customer: str
    kind: str
    role: str  # the manifest's key for it: the role, or the kind for kinds with one TargetModel
    endpoint: str
    target_model: str
    version: int | None


@dataclass
class _Cached:
    manifest: dict[str, Any] | None  # None: the customer has no manifest
    sha256: str | None
    checked_at: float


class TargetResolver:
    def __init__(
        self,
        store: ArtifactStore,
        refresh_s: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store, self.refresh_s, self.clock = store, refresh_s, clock
        self._cache: dict[str, _Cached] = {}
        self._lock = threading.Lock()

    def resolve(self, customer: str, kind: str, role: str | None = None) -> Target:
        """The TargetModel serving `kind` (and `role`) for `customer` now."""
        description = describe(kind)
        wanted = role or description.default_role or description.kind.value
        manifest = self._manifest(customer)
        if manifest is None:
            raise TargetNotRegistered(
                f"customer {customer} has no manifest at "
                f"{self.store.uri(manifest_key(customer))}: no {kind} model was promoted for "
                "it; onboard the customer first"
            )
        entry = manifest["models"].get(description.kind.value)
        if entry is None:
            served = ", ".join(sorted(manifest["models"])) or "none"
            raise TargetNotRegistered(
                f"customer {customer} has no {kind} model in its manifest (it serves: {served}); "
                f"onboard the customer with the {kind} kind first"
            )
        targets = entry.get("targets") if isinstance(entry, dict) else None
        if not isinstance(targets, dict) or not isinstance(entry.get("endpoint"), str):
            raise ManifestError(
                f"{self.store.uri(manifest_key(customer))}: the {kind!r} entry has no endpoint "
                "and targets"
            )
        if wanted not in targets:
            raise TargetNotRegistered(
                f"customer {customer}'s {kind} model has no {wanted!r} TargetModel; "
                f"choose from {sorted(targets)}"
            )
        version = entry.get("version")
        return Target(
            customer,
            description.kind.value,
            wanted,
            entry["endpoint"],
            str(targets[wanted]),
            version if isinstance(version, int) else None,
        )

    def _manifest(self, customer: str) -> dict[str, Any] | None:
        with self._lock:
            cached = self._cache.get(customer)
            now = self.clock()
            if cached is not None and now - cached.checked_at < self.refresh_s:
                return cached.manifest
            try:
                self._cache[customer] = cached = self._refreshed(customer, cached, now)
            except StoreError as error:
                if cached is None:
                    raise
                # A store blip is no reason to fail calls: serve the last copy, check again soon.
                logger.warning("cannot check the manifest of %s: %s", customer, error)
                cached.checked_at = now
            return cached.manifest

    def _refreshed(self, customer: str, cached: _Cached | None, now: float) -> _Cached:
        key = manifest_key(customer)
        try:
            current = self.store.stored_sha256(key)
        except KeyMissing:
            return _Cached(None, None, now)
        if cached is not None and cached.sha256 == current:
            cached.checked_at = now
            return cached
        found = self.store.read_versioned(key)
        if found is None:
            return _Cached(None, None, now)
        try:
            manifest = parse_manifest(found.data, customer)
        except ManifestError as error:
            raise ManifestError(
                f"{self.store.uri(key)} is an unreadable manifest: {error}"
            ) from None
        return _Cached(manifest, hashlib.sha256(found.data).hexdigest(), now)
