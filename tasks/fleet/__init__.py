"""Fleet onboarding: which customers, which of them need training again, one run per customer."""

from tasks.fleet.child_runs import ChildResult, DeploymentRuns, OnboardingRuns, run_children
from tasks.fleet.fleet_customers import (
    FleetCustomer,
    FleetError,
    customers_under,
    fleet_customers,
    fleet_customers_task,
)
from tasks.fleet.fleet_outcomes import (
    CustomerOutcome,
    FleetOutcome,
    fail_if_any_failed,
    fleet_outcomes,
    report_fleet_task,
)
from tasks.fleet.onboard_customers import onboard_customers, onboard_customers_task
from tasks.fleet.retraining_check import (
    UNCHANGED,
    RetrainingCheck,
    RetrainingDecision,
    check_fleet,
    check_fleet_task,
)

__all__ = [
    "UNCHANGED",
    "ChildResult",
    "CustomerOutcome",
    "DeploymentRuns",
    "FleetCustomer",
    "FleetError",
    "FleetOutcome",
    "OnboardingRuns",
    "RetrainingCheck",
    "RetrainingDecision",
    "check_fleet",
    "check_fleet_task",
    "customers_under",
    "fail_if_any_failed",
    "fleet_customers",
    "fleet_customers_task",
    "fleet_outcomes",
    "onboard_customers",
    "onboard_customers_task",
    "report_fleet_task",
    "run_children",
]
