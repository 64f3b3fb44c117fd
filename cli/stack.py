"""`mme-factory up | down | status [--json] | deploy`: the local stack and the deployments.

`up` starts mme_local, a Prefect server and a worker of the `mme-factory-local` process pool
(created when missing), then applies prefect.yaml's deployments to that pool. `deploy` applies
them to a target's pool on the server PREFECT_API_URL names (the production Kubernetes pool).
"""

from __future__ import annotations

import argparse
import json
import os

from deployments import local_stack, pipeline_image
from deployments.apply import AppliedDeployments, apply_deployments
from deployments.declarations import TARGETS
from deployments.work_pools import LOCAL_POOL, ensure_pool
from mme_factory.errors import MmeFactoryError
from mme_factory.settings import Settings, load_settings


def register(commands: argparse._SubParsersAction) -> None:
    up = commands.add_parser(
        "up", help="start the local stack and apply the deployments; returns once it answers"
    )
    up.set_defaults(handler=run_up)
    down = commands.add_parser("down", help="stop the local stack's services by PID")
    down.set_defaults(handler=run_down)
    status = commands.add_parser("status", help="URL, PID and health of each local service")
    status.add_argument("--json", action="store_true", help="print the report as JSON")
    status.set_defaults(handler=run_status)
    deploy = commands.add_parser(
        "deploy",
        help="apply prefect.yaml's deployments to a target's work pool (created when missing) "
        "on the server PREFECT_API_URL names",
    )
    deploy.add_argument("--target", choices=TARGETS, default="production")
    deploy.add_argument(
        "--print",
        action="store_true",
        help="only print the pipeline image and the docker command that builds it",
    )
    deploy.set_defaults(handler=run_deploy)


def _services(settings: Settings, args: argparse.Namespace) -> list[local_stack.LocalService]:
    return local_stack.local_services(settings, args.settings)


def run_up(args: argparse.Namespace) -> int:
    settings = load_settings(args.settings)
    api_url = local_stack.prefect_api_url(settings.prefect.port)
    for service in _services(settings, args):
        if service.name == local_stack.WORKER and ensure_pool(api_url, LOCAL_POOL):
            print(f"work pool {LOCAL_POOL.name}: created ({LOCAL_POOL.type})")
        pid = local_stack.start(service)
        print(f"{service.name}: {service.url} (pid {pid}, log {service.log_file})")
    environ = {**os.environ, **local_stack.prefect_environment(settings)}
    _report(apply_deployments("local", api_url, settings.state_dir, args.settings, environ))
    return 0


def run_down(args: argparse.Namespace) -> int:
    for service in reversed(_services(load_settings(args.settings), args)):
        stopped = local_stack.stop(service)
        print(f"{service.name}: {'stopped' if stopped else 'was not running'}")
    return 0


def run_status(args: argparse.Namespace) -> int:
    services = _services(load_settings(args.settings), args)
    report = {service.name: local_stack.status(service) for service in services}
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        for name, item in report.items():
            state = "healthy" if item["healthy"] else ("running" if item["running"] else "stopped")
            print(f"{name}: {state}  {item['url']}  pid {item['pid']}  log {item['log']}")
    return 0 if all(item["healthy"] for item in report.values()) else 1


def run_deploy(args: argparse.Namespace) -> int:
    settings = load_settings(args.settings)
    if args.target == "production":
        image = pipeline_image.pipeline_image_uri(settings)
        print(f"pipeline image: {image}")
        print(f"build it with:  {' '.join(pipeline_image.build_command(image))}")
        if args.print:
            return 0
    api_url = os.environ.get("PREFECT_API_URL")
    if not api_url:
        raise MmeFactoryError(
            "PREFECT_API_URL is not set: export the server's API URL (and PREFECT_API_KEY for "
            "Prefect Cloud), or use `mme-factory up` for the local stack"
        )
    _report(apply_deployments(args.target, api_url, settings.state_dir, args.settings, os.environ))
    return 0


def _report(applied: AppliedDeployments) -> None:
    pools = ", ".join(applied.pools)
    print(f"deployments ({applied.target}, pool {pools}): {', '.join(applied.names)}")
    for reason in applied.skipped:
        print(f"  skipped {reason}")
