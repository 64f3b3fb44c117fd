"""`mme-factory validate --data PATH_OR_S3_URI [--kinds ...]`."""

from __future__ import annotations

import argparse
import json

from cli.arguments import add_kinds_argument
from mme_factory.settings import load_settings


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "validate", help="check a customer's data files against the data rules"
    )
    parser.add_argument("--data", required=True, help="directory or s3://bucket/prefix")
    add_kinds_argument(parser, "every kind the data supports")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from tasks.data.validate_data import validate_data

    settings = load_settings(args.settings)
    summary, report = validate_data(args.data, settings, args.kinds)
    if args.json:
        print(json.dumps({**summary.to_dict(), "report": str(report)}, indent=2))
        return 0
    print(f"data at {summary.data_uri} passed {len(summary.results)} validation rules")
    print(f"kinds with data: {', '.join(summary.kinds_found)}")
    print(f"kinds validated: {', '.join(summary.kinds_validated)}")
    print("rows: " + ", ".join(f"{name} {rows:,}" for name, rows in summary.rows.items()))
    print(f"report: {report}")
    return 0
