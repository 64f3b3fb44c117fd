"""`mme-factory package --run-dir RUN [--code-version v1] [--version V] [--kinds ...]`."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from cli.arguments import add_kinds_argument
from mme_factory.settings import load_settings


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "package", help="package a run's exported models as Triton tarballs, one per TargetModel"
    )
    parser.add_argument(
        "--run-dir", required=True, type=Path, help="<state_dir>/runs/<customer>/<run_id>"
    )
    parser.add_argument(
        "--code-version", help="Python-backend code version, e.g. v1 (default: latest)"
    )
    parser.add_argument("--version", help="version in the Triton model names (default: the run id)")
    parser.add_argument("--out", type=Path, help="output directory (default: RUN/package)")
    add_kinds_argument(parser, "every kind the run exported")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from tasks.packaging.package_triton import package_triton

    settings = load_settings(args.settings)
    summary = package_triton(
        args.run_dir,
        settings,
        code_version=args.code_version,
        version=args.version,
        output_dir=args.out,
        kinds=args.kinds,
    )
    if args.json:
        print(json.dumps(summary.to_dict(), indent=2))
        return 0
    print(f"packaged {len(summary.packages)} model(s) for {summary.customer} ({summary.version})")
    for package in summary.packages:
        print(
            f"  {package.target:<18} {package.entry_model}  code {package.code_version}  "
            f"{package.size_bytes / 1e6:.1f} MB  sha256 {package.sha256[:16]}  {package.tarball}"
        )
    return 0
