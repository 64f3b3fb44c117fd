"""The `onboard-fleet` flow: onboard many customers, each in its own `onboard-customer` run.

Deployed twice: `onboard-fleet` on demand, and `retrain-fleet` every week over every customer
under `fleet.data_prefix`; both skip a customer whose data, settings and code are unchanged.
"""

from __future__ import annotations

from typing import Any

from prefect import flow

from flows.flow_settings import flow_settings
from mme_factory.model_kinds import ModelKind
from tasks.fleet import (
    FleetCustomer,
    check_fleet_task,
    fail_if_any_failed,
    fleet_customers_task,
    onboard_customers_task,
    report_fleet_task,
)


@flow(name="onboard-fleet", log_prints=True)
def onboard_fleet(
    customers: list[FleetCustomer] | None = None,
    data_prefix: str | None = None,
    force: bool = False,
    concurrency: int | None = None,
    kinds: list[ModelKind] | None = None,
    settings_file: str | None = None,
    overrides: dict[str, str] | None = None,
) -> list[dict[str, Any]]:
    """Onboard the customers given, or every sub-folder of `data_prefix` (default: the
    settings' `fleet.data_prefix`), skipping those already trained on the same data and
    settings unless `force`; fail if any customer failed."""
    settings = flow_settings(settings_file, overrides)
    fleet = fleet_customers_task(customers, data_prefix, settings)
    checks = check_fleet_task(fleet, settings, kinds, force)
    results = onboard_customers_task(
        checks,
        settings,
        concurrency or settings.fleet.concurrency,
        kinds,
        settings_file,
        overrides,
    )
    outcomes = report_fleet_task(checks, results, settings)
    return fail_if_any_failed(outcomes)
