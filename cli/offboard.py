"""`mme-factory offboard --customer ID [--dry-run]`: delete everything of a customer;
`mme-factory reinstate --customer ID`: let an offboarded customer be onboarded again."""

from __future__ import annotations

import argparse
import json

from mme_factory.settings import load_settings


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "offboard",
        help="delete a customer's models, runs, reports and managed data; leave a tombstone",
    )
    parser.add_argument("--customer", required=True)
    parser.add_argument(
        "--dry-run", action="store_true", help="list what would be deleted, delete nothing"
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.set_defaults(handler=run)

    reinstate = commands.add_parser(
        "reinstate",
        help="let an offboarded customer be onboarded again (its tombstone becomes a manifest)",
    )
    reinstate.add_argument("--customer", required=True)
    reinstate.set_defaults(handler=run_reinstate)


def run(args: argparse.Namespace) -> int:
    from tasks.deployment.offboard.offboard_customer import offboard_customer

    report = offboard_customer(load_settings(args.settings), args.customer, args.dry_run)
    print(json.dumps(report.to_dict(), indent=2) if args.json else report.text())
    return 0


def run_reinstate(args: argparse.Namespace) -> int:
    from tasks.deployment.offboard.reinstate import reinstate_customer

    print(reinstate_customer(load_settings(args.settings), args.customer).text())
    return 0
