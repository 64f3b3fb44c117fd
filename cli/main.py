"""The `mme-factory` command line: one module per subcommand in this package."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence

from cli.arguments import flatten_kinds
from mme_factory.errors import MmeFactoryError

COMMAND_MODULES = (
    "validate",
    "train",
    "package",
    "models",
    "offboard",
    "stack",
    "plan",
    "serving_image",
    "check_libtorch",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mme-factory",
        description="Fine-tune per-customer models; serve them from shared multi-model endpoints.",
    )
    parser.add_argument(
        "--settings", help="settings YAML (default: $MME_FACTORY_SETTINGS, else built-in defaults)"
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(f"cli.{name}").register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    flatten_kinds(args)
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except MmeFactoryError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
