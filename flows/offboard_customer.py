"""The `offboard-customer` flow: delete everything of a customer and leave a tombstone."""

from __future__ import annotations

from typing import Any

from prefect import flow

from flows.flow_settings import flow_settings
from tasks.deployment import offboard_customer_task


@flow(name="offboard-customer", log_prints=True)
def offboard_customer(
    customer_id: str,
    dry_run: bool = False,
    settings_file: str | None = None,
    overrides: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Delete the customer's TargetModels, runs, reports and managed data; `dry_run` lists them."""
    settings = flow_settings(settings_file, overrides)
    report = offboard_customer_task(settings, customer_id, dry_run)
    print(report.text())
    return report.to_dict()
