"""Offboarding a customer: find everything it holds, tombstone it, delete, report."""

from tasks.deployment.offboard.customer_holdings import (
    CustomerHoldings,
    ManifestState,
    find_holdings,
)
from tasks.deployment.offboard.offboard_customer import (
    UnknownCustomer,
    offboard_customer,
    offboard_customer_task,
)
from tasks.deployment.offboard.offboarded_run import (
    clean_up_if_offboarded,
    discard_if_offboarded,
)
from tasks.deployment.offboard.offboarding_report import OffboardingReport

__all__ = [
    "CustomerHoldings",
    "ManifestState",
    "OffboardingReport",
    "UnknownCustomer",
    "clean_up_if_offboarded",
    "discard_if_offboarded",
    "find_holdings",
    "offboard_customer",
    "offboard_customer_task",
]
