"""`mme-factory serving-image [--print | --push]`: the image every endpoint's model runs."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from mme_factory.settings import Settings, load_settings

if TYPE_CHECKING:
    from mme_factory.serving_image.image_uri import ServingImage
    from mme_factory.serving_image.publish import PushPlan

DESCRIPTION = """\
The serving image is SageMaker's Triton image plus the exact packages the Python-backend models
import (mme_factory/serving_image/requirements.txt). Registration names it in CreateModel. There
is one image per base the configured instance types need: GPU types build on the stock `-py3`
image, CPU types on `-py3-cpu`. The URI is <account of sagemaker.role_arn>.dkr.ecr.<region>.
amazonaws.com/<sagemaker.image_repository>:<triton_version>-py3[-cpu]-<digest of the package
lists>, unless sagemaker.image_uri names one.

Without options: print the image URIs and their bases.
--print: print the shell commands that build and push them; run and check nothing; exit 0.
--push:  create the ECR repository if missing, log in to the stock and the target registries,
         build and push every image not yet in ECR; exit 0. Without a Docker engine or AWS
         credentials of the image's account, say which is missing, print the commands, exit 1.
"""


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "serving-image",
        help="show, or build and push, the Triton image the endpoints run",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--print",
        dest="print_commands",
        action="store_true",
        help="print the build and push commands without running them (exit 0)",
    )
    mode.add_argument(
        "--push",
        action="store_true",
        help="build and push to ECR; exit 1 with the commands if Docker or credentials are missing",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from mme_factory.serving_image.image_uri import EcrImage, serving_images
    from mme_factory.serving_image.publish import push_plan, push_problems, push_serving_images

    settings = load_settings(args.settings)
    if not (args.print_commands or args.push):
        for image in serving_images(settings):
            print(image.uri)
            print(f"  FROM {image.base}")
            print(f"  for {_runs_on(image, settings)}")
        return 0
    plan = push_plan(settings)
    if args.print_commands:
        print("\n".join(build_script(plan, settings)))
        return 0
    problems = push_problems(plan, settings)
    if problems:
        for problem in problems:
            print(f"cannot push: {problem}", file=sys.stderr)
        accounts = ", ".join(sorted({EcrImage.parse(image.uri).account for image in plan.images}))
        print(
            f"run these commands with a Docker engine and credentials of account {accounts}:",
            file=sys.stderr,
        )
        print("\n".join(build_script(plan, settings)))
        return 1
    pushed = push_serving_images(plan, settings)
    for image in plan.images:
        state = "pushed" if image.uri in pushed else "present"
        print(f"{state}: {image.uri}")
    return 0


def build_script(plan: PushPlan, settings: Settings) -> list[str]:
    """A shell script: each image as a comment, then the commands that build and push them."""
    lines = []
    for image in plan.images:
        lines += [
            f"# {image.uri}",
            f"#   FROM {image.base}",
            f"#   for {_runs_on(image, settings)}",
        ]
    return [*lines, "set -euo pipefail", *plan.shell_script()]


def _runs_on(image: ServingImage, settings: Settings) -> str:
    types = settings.sagemaker.instance_types
    return ", ".join(f"{kind} ({types[kind]})" for kind in image.kinds)
