"""Offboarding: delete everything of a customer and leave a tombstone; idempotent, with a dry run.

The customer's onboarding flow runs that are queued or running are cancelled first, and waited
for. Then, under the customer lock (an onboarding that holds it is waited for, up to
`sagemaker.lock_wait_s`), in this order, so that a run that dies part-way is finished by the
next: the manifest becomes a tombstone first (the serving path and onboarding refuse the
customer from then on, and the tombstone keeps the highest version ever used), then the
managed data, the validation reports and run directories, every TargetModel under every
endpoint prefix, the local endpoints' loaded copies (unloaded after their tarballs are gone,
so nothing reloads them) and last the version record, whose number the tombstone now keeps.
Last, whatever a run wrote meanwhile is looked for again and deleted too. The tombstone stays
until a person reinstates the customer.
"""

from __future__ import annotations

import shutil
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from prefect import task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE

from mme_factory.errors import MmeFactoryError
from mme_factory.lease_fence import Fence
from mme_factory.naming import check_customer_id, manifest_key, version_record_key
from mme_factory.records import Tombstone
from mme_factory.settings import Settings
from mme_factory.store import ArtifactStore, LocalStore, open_store
from tasks.deployment.customer_lock import customer_lock
from tasks.deployment.fenced_manifest import write_document
from tasks.deployment.offboard.customer_flow_runs import stop_onboarding_runs, stopped_runs_rows
from tasks.deployment.offboard.customer_holdings import (
    CustomerHoldings,
    ManifestState,
    find_holdings,
)
from tasks.deployment.offboard.offboarding_report import (
    OffboardingReport,
    ReportRow,
    report_rows,
)
from tasks.deployment.warmup.local_unload import loaded_models, unload_customer

LATE_PASSES = 3


class UnknownCustomer(MmeFactoryError):
    """Nothing of the customer exists: no manifest, no tombstone, no objects, no runs."""


def holdings_of(store: ArtifactStore, settings: Settings, customer: str) -> CustomerHoldings:
    """What the customer has, including its models loaded on local endpoints."""
    holdings = find_holdings(store, settings, customer)
    holdings.loaded = loaded_models(settings, customer)
    if not holdings.known:
        raise UnknownCustomer(
            f"no customer {customer}: no manifest or tombstone at "
            f"{store.uri(manifest_key(customer))}, no TargetModels under "
            f"{store.uri('mme')}/<endpoint>/{customer}/, no run directory under "
            f"{settings.runs_dir / customer}; check the customer id"
        )
    return holdings


def write_tombstone(store: ArtifactStore, holdings: CustomerHoldings, fence: Fence) -> None:
    """Replace the manifest (readable or not), only if it is still the version this run read
    and this run still holds the customer's lock."""
    offboarded_at = datetime.now(UTC).isoformat(timespec="seconds")
    tombstone = Tombstone(
        customer=holdings.customer,
        offboarded_at=offboarded_at,
        highest_version=holdings.highest_version,
    )
    write_document(store, holdings.customer, lambda _: tombstone, fence, replace_unreadable=True)
    holdings.offboarded_at = offboarded_at


def delete_keys(store: ArtifactStore, keys: list[str]) -> None:
    for key in keys:
        store.delete(key)
    if isinstance(store, LocalStore):
        _prune_empty_folders(store.root, keys)


def _prune_empty_folders(root: Path, keys: list[str]) -> None:
    """A local store keeps folders S3 would not have: remove those the deletions emptied."""
    for folder in sorted({(root / key).parent for key in keys}, key=lambda p: -len(p.parts)):
        while folder != root and folder.is_relative_to(root):
            try:
                folder.rmdir()
            except OSError:
                break
            folder = folder.parent


def delete_everything(
    store: ArtifactStore, settings: Settings, holdings: CustomerHoldings, fence: Fence
) -> None:
    """Carry out the offboarding `holdings` describes; call under the customer lock."""
    if holdings.manifest != ManifestState.TOMBSTONE:
        write_tombstone(store, holdings, fence)
    for keys in holdings.data.values():
        delete_keys(store, keys)
    for report in holdings.reports:
        report.unlink(missing_ok=True)
    for run in holdings.run_dirs:
        shutil.rmtree(run, ignore_errors=True)
    runs = settings.runs_dir / holdings.customer
    if runs.is_dir() and not any(runs.iterdir()):
        runs.rmdir()
    for keys in holdings.target_models.values():
        delete_keys(store, keys)
    delete_keys(store, holdings.gate_evidence)
    for endpoint in holdings.loaded:
        holdings.loaded[endpoint] = unload_customer(settings, endpoint, holdings.customer)
    if holdings.version_record:
        store.delete(version_record_key(holdings.customer))


def offboard_customer(
    settings: Settings, customer: str, dry_run: bool = False
) -> OffboardingReport:
    """Delete everything of `customer` (with `dry_run`, only list it); what was deleted."""
    try:
        check_customer_id(customer)
    except ValueError as error:
        raise UnknownCustomer(str(error)) from None
    store = open_store(settings.store, settings)
    if dry_run:
        return _report(store, settings, holdings_of(store, settings, customer), dry_run)
    sagemaker = settings.sagemaker
    stopped = stop_onboarding_runs(customer, sagemaker.lock_wait_s)
    with customer_lock(store, customer, sagemaker.lock_wait_s, sagemaker.lock_stale_s) as lease:
        holdings = holdings_of(store, settings, customer)
        report = _report(store, settings, holdings, dry_run)
        if not report.already_offboarded:
            delete_everything(store, settings, holdings, lease.fence)
            report.offboarded_at = holdings.offboarded_at
        report.rows += delete_what_appeared(store, settings, customer, lease.fence)
    report.rows += stopped_runs_rows(stopped)
    return report


def delete_what_appeared(
    store: ArtifactStore, settings: Settings, customer: str, fence: Fence
) -> list[ReportRow]:
    """Delete what a run of the customer wrote while the offboarding deleted (its run
    directory, version record or uploads); the rows of what was found."""
    rows: list[ReportRow] = []
    for _ in range(LATE_PASSES):
        late = find_holdings(store, settings, customer)
        late.loaded = loaded_models(settings, customer)
        if not late.left_to_delete:
            return rows
        found = report_rows(late, store, settings, dry_run=False)
        rows += [
            replace(row, what=f"{row.what} (written during the offboarding)")
            for row in found
            if row.count and not row.action.startswith("kept")  # data outside: listed already
        ]
        delete_everything(store, settings, late, fence)
    return rows


def _report(
    store: ArtifactStore, settings: Settings, holdings: CustomerHoldings, dry_run: bool
) -> OffboardingReport:
    return OffboardingReport(
        customer=holdings.customer,
        dry_run=dry_run,
        already_offboarded=(
            holdings.manifest == ManifestState.TOMBSTONE and not holdings.left_to_delete
        ),
        highest_version=holdings.highest_version,
        offboarded_at=holdings.offboarded_at,
        rows=report_rows(holdings, store, settings, dry_run),
    )


@task(name="offboard-customer", cache_policy=NO_CACHE)
def offboard_customer_task(settings: Settings, customer: str, dry_run: bool) -> OffboardingReport:
    """Offboard the customer (or list what that would delete) and attach the table."""
    report = offboard_customer(settings, customer, dry_run)
    create_table_artifact(report.table(), key="offboarding", description=report.summary())
    return report
