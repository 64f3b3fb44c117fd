"""Whether a customer needs training again: compare its data and settings with the manifest.

An offboarded customer is skipped, whatever else (`force` included), until it is reinstated.

A customer is skipped when every kind it would train has a promoted version whose training
fingerprint equals the one its data, settings and inference code give now. The check hashes
the data files and reads the manifest: no model is loaded, so a whole fleet takes seconds.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from enum import StrEnum

from prefect import task
from prefect.cache_policies import NO_CACHE

from mme_factory.errors import MmeFactoryError
from mme_factory.manifest import (
    CustomerOffboarded,
    promoted_fingerprint,
    read_manifest,
    refuse_if_offboarded,
)
from mme_factory.model_kinds import ModelKind
from mme_factory.naming import check_customer_id
from mme_factory.records import CustomerManifest, TrainingFingerprint
from mme_factory.settings import Settings
from mme_factory.store import open_store
from tasks.deployment.publish.training_fingerprint import training_fingerprints
from tasks.fleet.fleet_customers import FleetCustomer

UNCHANGED = "data, settings and code unchanged"
PARTS = (
    ("data_sha256", "data"),
    ("settings_sha256", "settings"),
    ("inference_code_version", "inference code"),
)


class RetrainingDecision(StrEnum):
    RETRAIN = "retrain"
    SKIP = "skip"
    FAILED = "failed"  # the check itself could not be made


@dataclass(frozen=True)
class RetrainingCheck:
    customer: FleetCustomer
    verdict: RetrainingDecision
    reason: str
    kinds: tuple[str, ...] = ()  # the kinds onboarding would train
    live_version: int | None = None  # the highest version of those kinds live at the check


def changes(current: dict[str, TrainingFingerprint], manifest: CustomerManifest) -> list[str]:
    """What differs, kind by kind, between now and what the promoted versions were trained on."""
    found = []
    for kind, fingerprint in current.items():
        promoted = promoted_fingerprint(manifest, kind)
        if promoted is None:
            known = kind in manifest.models
            found.append(f"{kind}: " + ("no training fingerprint" if known else "no version yet"))
            continue
        differing = [
            label
            for field, label in PARTS
            if getattr(promoted, field) != getattr(fingerprint, field)
        ]
        if differing:
            found.append(f"{kind}: {', '.join(differing)} changed")
    return found


def highest_version(manifest: CustomerManifest, kinds: tuple[str, ...]) -> int | None:
    versions = [
        entry.version
        for kind in kinds
        if (entry := manifest.models.get(kind)) is not None and entry.version is not None
    ]
    return max(versions, default=None)


def live_version(settings: Settings, customer: str, kinds: tuple[str, ...]) -> int | None:
    """The highest version of `kinds` the customer serves now; None when none or unreadable."""
    try:
        manifest = read_manifest(open_store(settings.store, settings), customer)
    except MmeFactoryError:
        return None
    return highest_version(manifest, kinds)


def check_customer(
    customer: FleetCustomer,
    settings: Settings,
    kinds: list[ModelKind] | None,
    force: bool,
) -> RetrainingCheck:
    """Retrain, skip, or fail with the reason; never raises for one customer's problem."""
    trained: tuple[str, ...] = ()
    try:
        check_customer_id(customer.customer_id)
        store = open_store(settings.store, settings)
        refuse_if_offboarded(store, customer.customer_id)
        current = training_fingerprints(customer.data_uri, settings, kinds)
        trained = tuple(current)
        if force:
            live = live_version(settings, customer.customer_id, trained)
            return RetrainingCheck(customer, RetrainingDecision.RETRAIN, "forced", trained, live)
        if not current:
            # Onboarding reports which files are missing; the check only says there are none.
            return RetrainingCheck(
                customer, RetrainingDecision.RETRAIN, "no data files of any kind", trained
            )
        manifest = read_manifest(store, customer.customer_id)
    except CustomerOffboarded as gone:
        return RetrainingCheck(
            customer,
            RetrainingDecision.SKIP,
            f"offboarded at {gone.offboarded_at}; `mme-factory reinstate --customer "
            f"{customer.customer_id}` lets it be onboarded again",
        )
    except (MmeFactoryError, ValueError) as error:
        return RetrainingCheck(
            customer, RetrainingDecision.FAILED, f"{type(error).__name__}: {error}"
        )
    found = changes(current, manifest)
    if found:
        live = highest_version(manifest, trained)
        return RetrainingCheck(
            customer, RetrainingDecision.RETRAIN, "; ".join(found), trained, live
        )
    return RetrainingCheck(customer, RetrainingDecision.SKIP, UNCHANGED, trained)


def check_fleet(
    customers: list[FleetCustomer],
    settings: Settings,
    kinds: list[ModelKind] | None = None,
    force: bool = False,
) -> list[RetrainingCheck]:
    """Check every customer, several at once: each check waits on the store, not the CPU."""
    with ThreadPoolExecutor(settings.fleet.check_concurrency) as pool:
        return list(pool.map(lambda c: check_customer(c, settings, kinds, force), customers))


@task(name="check-retraining", cache_policy=NO_CACHE)
def check_fleet_task(
    customers: list[FleetCustomer],
    settings: Settings,
    kinds: list[ModelKind] | None = None,
    force: bool = False,
) -> list[RetrainingCheck]:
    """Decide, per customer, whether onboarding it again would change anything."""
    checks = check_fleet(customers, settings, kinds, force)
    for check in checks:
        print(f"{check.customer.customer_id}: {check.verdict}: {check.reason}")
    return checks
