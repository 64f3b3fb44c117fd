"""`mme-factory check-libtorch [--run-dir RUN] [--torch-version V]`."""

from __future__ import annotations

import argparse
from pathlib import Path

from mme_factory.errors import MmeFactoryError
from mme_factory.settings import load_settings

DEFAULT_CACHE = Path(".libtorch-check-env")


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "check-libtorch",
        help="load a run's TorchScript exports under the serving image's libtorch version and "
        "compare their outputs with the export's (builds a cached torch environment once)",
    )
    parser.add_argument(
        "--run-dir", type=Path, help="<state_dir>/runs/<customer>/<run_id> (default: the newest)"
    )
    parser.add_argument(
        "--torch-version",
        help="torch version to load with (default: the libtorch of sagemaker.triton_version)",
    )
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=DEFAULT_CACHE,
        help=f"where the torch environments are kept (default: {DEFAULT_CACHE})",
    )
    parser.set_defaults(handler=run)


def newest_run(runs_dir: Path) -> Path:
    runs = [path.parent for path in runs_dir.glob("*/*/run.json")]
    with_exports = [run for run in runs if any(run.rglob("model.pt"))]
    if not with_exports:
        raise MmeFactoryError(f"no run with a TorchScript export under {runs_dir}: train one first")
    return max(with_exports, key=lambda run: (run / "run.json").stat().st_mtime)


def run(args: argparse.Namespace) -> int:
    from mme_factory.serving_image import image_libtorch
    from tasks.packaging.libtorch_compatibility import check_environment, check_run, report_lines

    settings = load_settings(args.settings)
    version = args.torch_version or image_libtorch(settings.sagemaker.triton_version)
    run_dir = args.run_dir or newest_run(settings.runs_dir)
    python = check_environment(args.cache_dir.resolve(), version)
    results = check_run(run_dir, python)
    print("\n".join(report_lines(run_dir, results)))
    failed = [result.export for result in results if not result.passed]
    if failed:
        print(f"{len(failed)} of {len(results)} exports would not serve under torch {version}")
        return 1
    print(f"all {len(results)} exports load and match under torch {version}")
    return 0
