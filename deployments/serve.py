"""Serve the project's deployments: `onboard-customer` on demand and `warmup` every hour.

    PREFECT_API_URL=http://127.0.0.1:4200/api python -m deployments.serve

`mme-factory up` runs this beside a local Prefect server; against Prefect Cloud or a remote
server, set PREFECT_API_URL (and PREFECT_API_KEY) and run the same command.
"""

from __future__ import annotations

import os

from prefect import serve

from flows.onboard_customer import onboard_customer
from flows.warmup import warmup

WARMUP_CRON = "0 * * * *"


def deployments() -> list:
    settings_file = os.environ.get("MME_FACTORY_SETTINGS")
    defaults = {"settings_file": settings_file} if settings_file else {}
    return [
        onboard_customer.to_deployment(
            name="onboard-customer",
            parameters=defaults,
            description="Validate, fine-tune, package, register, smoke-test and promote a "
            "customer's models.",
            tags=["mme-factory"],
        ),
        warmup.to_deployment(
            name="warmup",
            cron=WARMUP_CRON,
            parameters=defaults,
            description="Invoke every registered model so that none is cold.",
            tags=["mme-factory"],
        ),
    ]


def main() -> None:
    serve(*deployments(), print_starting_message=True)


if __name__ == "__main__":
    main()
