"""`mme-factory up | down | status [--json]`: the local stack's background services."""

from __future__ import annotations

import argparse
import json

from deployments import local_stack
from mme_factory.settings import load_settings


def register(commands: argparse._SubParsersAction) -> None:
    up = commands.add_parser("up", help="start the local stack; returns once it answers")
    up.set_defaults(handler=run_up)
    down = commands.add_parser("down", help="stop the local stack's services by PID")
    down.set_defaults(handler=run_down)
    status = commands.add_parser("status", help="URL, PID and health of each local service")
    status.add_argument("--json", action="store_true", help="print the report as JSON")
    status.set_defaults(handler=run_status)


def _services(args: argparse.Namespace) -> list[local_stack.LocalService]:
    return local_stack.local_services(load_settings(args.settings), args.settings)


def run_up(args: argparse.Namespace) -> int:
    for service in _services(args):
        pid = local_stack.start(service)
        print(f"{service.name}: {service.url} (pid {pid}, log {service.log_file})")
    return 0


def run_down(args: argparse.Namespace) -> int:
    for service in reversed(_services(args)):
        stopped = local_stack.stop(service)
        print(f"{service.name}: {'stopped' if stopped else 'was not running'}")
    return 0


def run_status(args: argparse.Namespace) -> int:
    report = {service.name: local_stack.status(service) for service in _services(args)}
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        for name, item in report.items():
            state = "healthy" if item["healthy"] else ("running" if item["running"] else "stopped")
            print(f"{name}: {state}  {item['url']}  pid {item['pid']}  log {item['log']}")
    return 0 if all(item["healthy"] for item in report.values()) else 1
