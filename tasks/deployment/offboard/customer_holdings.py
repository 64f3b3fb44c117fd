"""Everything the pipeline holds of one customer, found where it is written, for offboarding.

- TargetModels under every endpoint's prefix (`mme/<endpoint>/<customer>/...`), listed from the
  store: every version ever uploaded and not yet deleted, on endpoints of any environment;
- the run directories (`<state_dir>/runs/<customer>/`) and the validation reports their
  `run.json` names (under `<state_dir>/reports/`);
- the customer's data where it lies in the managed store: a folder named after the customer
  inside the artifact store (a run's data URI, or `fleet.data_prefix`/<customer>/ when that
  prefix is inside the store). Data anywhere else belongs to whoever put it there and is kept;
- the manifest or tombstone and the version record under `registry/`;
- the gate evidence of the versions it was served (`gate-evidence/<customer>/`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from mme_factory.manifest import ManifestError, parse_document
from mme_factory.naming import (
    GATE_EVIDENCE_PREFIX,
    REGISTRY_PREFIX,
    TargetModelKey,
    check_customer_id,
    gate_evidence_prefix,
    manifest_key,
    version_record_key,
)
from mme_factory.records import CustomerManifest, RunRecord, Tombstone, UnreadableRecord
from mme_factory.settings import Settings
from mme_factory.store import ArtifactStore
from tasks.deployment.version_numbers import recorded_highest

MODEL_DATA_ROOT = "mme/"
PIPELINE_PREFIXES = (MODEL_DATA_ROOT, REGISTRY_PREFIX, GATE_EVIDENCE_PREFIX)


class ManifestState(StrEnum):
    """What the customer's manifest key holds."""

    MANIFEST = "manifest"
    TOMBSTONE = "tombstone"
    UNREADABLE = "unreadable"
    NONE = "none"


@dataclass
class CustomerHoldings:
    customer: str
    manifest: ManifestState
    offboarded_at: str | None
    highest_version: int  # the highest version ever used: record, manifest, uploads, tombstone
    version_record: bool
    target_models: dict[str, list[str]] = field(default_factory=dict)  # endpoint -> store keys
    loaded: dict[str, list[str]] = field(default_factory=dict)  # local endpoint -> TargetModels
    run_dirs: list[Path] = field(default_factory=list)
    reports: list[Path] = field(default_factory=list)
    data: dict[str, list[str]] = field(default_factory=dict)  # managed location -> store keys
    data_kept: list[str] = field(default_factory=list)  # data URIs outside the managed store
    gate_evidence: list[str] = field(default_factory=list)  # store keys

    @property
    def left_to_delete(self) -> bool:
        """Whether anything but the manifest remains (a tombstone stays)."""
        return bool(
            self.version_record
            or any(self.target_models.values())
            or any(self.loaded.values())
            or self.run_dirs
            or self.reports
            or any(self.data.values())
            or self.gate_evidence
        )

    @property
    def known(self) -> bool:
        return self.manifest != ManifestState.NONE or self.left_to_delete


def endpoint_target_models(store: ArtifactStore, customer: str) -> dict[str, list[str]]:
    """The customer's objects under every endpoint prefix in the store, by endpoint."""
    found: dict[str, list[str]] = {}
    # Listed in full before anything is deleted: deleting while S3 pages a listing skips keys.
    for key in list(store.list_keys(MODEL_DATA_ROOT)):
        parts = key[len(MODEL_DATA_ROOT) :].split("/", 2)
        if len(parts) == 3 and parts[1] == customer:
            found.setdefault(parts[0], []).append(key)
    return found


def highest_uploaded(target_models: dict[str, list[str]]) -> int:
    highest = 0
    for endpoint, keys in target_models.items():
        for key in keys:
            try:
                parsed = TargetModelKey.parse(key[len(f"{MODEL_DATA_ROOT}{endpoint}/") :])
            except ValueError:
                continue
            highest = max(highest, parsed.version)
    return highest


def run_records(settings: Settings, customer: str) -> tuple[list[Path], list[RunRecord]]:
    """The customer's run directories and the run.json of each that has a readable one."""
    folder = settings.runs_dir / customer
    runs = sorted(path for path in folder.iterdir() if path.is_dir()) if folder.is_dir() else []
    records = []
    for run in runs:
        try:
            records.append(RunRecord.read(run))
        except (OSError, UnreadableRecord):
            continue
    return runs, records


def reports_of(settings: Settings, records: list[RunRecord]) -> list[Path]:
    """The reports the runs name, only those under the reports directory."""
    root = settings.reports_dir.resolve()
    reports = set()
    for record in records:
        named = record.validation_report
        if named:
            path = Path(named).resolve()
            if path.is_relative_to(root) and path.is_file():
                reports.add(path)
    return sorted(reports)


def managed_prefix(store: ArtifactStore, data_uri: str, customer: str) -> str | None:
    """The store prefix of `data_uri` when it is a folder of the customer inside the store."""
    root = store.uri().rstrip("/")
    location = data_uri.rstrip("/")
    if "://" not in location:
        location = str(Path(location).resolve())
    if not location.startswith(root + "/"):
        return None
    prefix = location[len(root) + 1 :] + "/"
    if prefix.startswith(PIPELINE_PREFIXES) or prefix.rstrip("/").rsplit("/", 1)[-1] != customer:
        return None
    return prefix


def find_holdings(store: ArtifactStore, settings: Settings, customer: str) -> CustomerHoldings:
    """What the store and the state directory hold of `customer` (local endpoints aside)."""
    check_customer_id(customer)
    manifest, document = ManifestState.NONE, None
    found = store.read_versioned(manifest_key(customer))
    if found is not None:
        try:
            document = parse_document(found.data, customer)
            tombstone = isinstance(document, Tombstone)
            manifest = ManifestState.TOMBSTONE if tombstone else ManifestState.MANIFEST
        except ManifestError:
            # Replaced all the same: nothing of the customer is kept.
            manifest = ManifestState.UNREADABLE
    record = store.read_versioned(version_record_key(customer))
    target_models = endpoint_target_models(store, customer)
    highest = max(
        recorded_highest(store, version_record_key(customer), record),
        document.highest_named_version() if isinstance(document, CustomerManifest) else 0,
        highest_uploaded(target_models),
        document.highest_version if isinstance(document, Tombstone) else 0,
    )
    runs, records = run_records(settings, customer)
    holdings = CustomerHoldings(
        customer=customer,
        manifest=manifest,
        offboarded_at=document.offboarded_at if isinstance(document, Tombstone) else None,
        highest_version=highest,
        version_record=record is not None,
        target_models=target_models,
        run_dirs=runs,
        reports=reports_of(settings, records),
        gate_evidence=list(store.list_keys(gate_evidence_prefix(customer))),
    )
    recorded = [r.data_uri for r in records if r.data_uri is not None]
    for location in dict.fromkeys(recorded):
        prefix = managed_prefix(store, location, customer)
        if prefix is None:
            holdings.data_kept.append(location)
        else:
            holdings.data[store.uri(prefix)] = list(store.list_keys(prefix))
    if settings.fleet.data_prefix:
        # Where fleet runs read the customer's data, also when no run directory is left here.
        fleet = managed_prefix(
            store, f"{settings.fleet.data_prefix.rstrip('/')}/{customer}", customer
        )
        if fleet is not None and store.uri(fleet) not in holdings.data:
            keys = list(store.list_keys(fleet))
            if keys:
                holdings.data[store.uri(fleet)] = keys
    return holdings
