"""Settings of fleet onboarding: where the customers' data lives and how many run at once."""

from __future__ import annotations

from pydantic import Field

from mme_factory.settings.section import SettingsSection


class FleetSettings(SettingsSection):
    # The store prefix (s3://bucket/customers/ or a local directory) whose sub-folders are the
    # customers the weekly `retrain-fleet` run goes over; each folder's name is the customer id.
    data_prefix: str | None = None
    deployment: str = "onboard-customer/onboard-customer"  # what each customer's run starts
    concurrency: int = Field(4, ge=1, le=1000)  # onboarding runs in flight at once
    poll_interval_s: float = Field(5.0, gt=0)
    # A customer's run that has not finished this long after it was started (queued for a
    # worker included) is cancelled and counts as failed.
    run_timeout_s: float = Field(4 * 3600.0, gt=0)
    check_concurrency: int = Field(16, ge=1, le=256)  # customers whose data is hashed at once
