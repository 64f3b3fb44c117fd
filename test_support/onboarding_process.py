"""One onboard-customer flow run in a process of its own, so a test can kill it at any point.

    python -m test_support.onboarding_process CUSTOMER DATA_DIR KIND [KIND ...]

Settings come from MME_FACTORY_* variables and the Prefect API from PREFECT_API_URL, both set
by the test. Exit status 0: promoted; 1: the flow failed (its error on stderr).
"""

from __future__ import annotations

import sys

from flows.onboard_customer import onboard_customer


def main(arguments: list[str]) -> int:
    customer, data, *kinds = arguments
    try:
        summary = onboard_customer(customer_id=customer, data_uri=data, kinds=kinds or None)
    except Exception as error:  # the test reads the outcome, not a traceback
        print(f"onboarding failed: {type(error).__name__}: {error}", file=sys.stderr)
        return 1
    print(f"promoted v{summary['version']}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
