"""Arguments shared by several subcommands."""

from __future__ import annotations

import argparse

from mme_factory.model_kinds import ModelKind, kind_names, parse_kinds


def _kinds(value: str) -> list[ModelKind]:
    try:
        return parse_kinds([value]) or []
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def add_kinds_argument(parser: argparse.ArgumentParser, default: str) -> None:
    """`--kinds embedding classifier` or `--kinds all` or `--kinds a,b`; parsed to ModelKind."""
    parser.add_argument(
        "--kinds",
        nargs="+",
        metavar="KIND",
        type=_kinds,
        help=f"{', '.join(kind_names())} or all (default: {default})",
    )


def flatten_kinds(args: argparse.Namespace) -> None:
    if getattr(args, "kinds", None):
        args.kinds = list(dict.fromkeys(kind for group in args.kinds for kind in group))
