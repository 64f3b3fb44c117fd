"""The `mme-factory` command line."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence

from mme_factory.errors import MmeFactoryError
from mme_factory.model_kinds import ModelKind, parse_kinds
from mme_factory.settings import load_settings


def _validate(args: argparse.Namespace) -> int:
    from tasks.validate_data import check_customer_data

    settings = load_settings(args.settings)
    summary, report = check_customer_data(args.data, settings, args.kinds)
    if args.json:
        print(json.dumps({**summary.to_dict(), "report": str(report)}, indent=2))
        return 0
    print(f"data at {summary.data_uri} passed {len(summary.results)} validation rules")
    print(f"kinds with data: {', '.join(summary.kinds_found)}")
    print(f"kinds validated: {', '.join(summary.kinds_validated)}")
    print("rows: " + ", ".join(f"{name} {rows:,}" for name, rows in summary.rows.items()))
    print(f"report: {report}")
    return 0


def _kinds_argument(value: str) -> list[ModelKind]:
    try:
        return parse_kinds([value]) or []
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _flatten_kinds(args: argparse.Namespace) -> None:
    if getattr(args, "kinds", None):
        args.kinds = list(dict.fromkeys(kind for group in args.kinds for kind in group))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mme-factory",
        description="Fine-tune per-customer models; serve them from shared multi-model endpoints.",
    )
    parser.add_argument(
        "--settings", help="settings YAML (default: $MME_FACTORY_SETTINGS, else built-in defaults)"
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    validate = commands.add_parser("validate", help="validate a customer's data (DESIGN §5)")
    validate.add_argument("--data", required=True, help="directory or s3://bucket/prefix")
    validate.add_argument(
        "--kinds",
        type=_kinds_argument,
        nargs="+",
        metavar="KIND",
        help="embedding, classifier, autocomplete or all (default: every kind the data supports)",
    )
    validate.add_argument("--json", action="store_true", help="print the summary as JSON")
    validate.set_defaults(handler=_validate)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _flatten_kinds(args)
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except MmeFactoryError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return 1


if __name__ == "__main__":
    sys.exit(main())
