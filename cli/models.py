"""`mme-factory rollback` and `mme-factory invoke`: the customer manifest from the command line."""

from __future__ import annotations

import argparse
import json

from mme_factory.model_kinds import describe, kind_names
from mme_factory.settings import load_settings


def register(commands: argparse._SubParsersAction) -> None:
    rollback = commands.add_parser(
        "rollback", help="point a customer's kind at its previous version"
    )
    rollback.add_argument("--customer", required=True)
    rollback.add_argument("--kind", required=True, choices=kind_names())
    rollback.set_defaults(handler=run_rollback)

    invoke = commands.add_parser(
        "invoke", help="call a customer's served model through its endpoint"
    )
    invoke.add_argument("--customer", required=True)
    invoke.add_argument("--kind", required=True, choices=kind_names())
    invoke.add_argument(
        "--role",
        default=None,
        help="the TargetModel's role, for kinds that have several (embedding: query or article)",
    )
    invoke.add_argument("--text", required=True, action="append", help="repeat for a batch")
    invoke.add_argument("--json", action="store_true", help="print the answer as JSON")
    invoke.set_defaults(handler=run_invoke)


def run_rollback(args: argparse.Namespace) -> int:
    from mme_factory.store import open_store
    from tasks.deployment.customer_lock import customer_lock
    from tasks.deployment.publish.promote import rollback

    settings = load_settings(args.settings)
    store = open_store(settings.store, settings)
    sagemaker = settings.sagemaker
    with customer_lock(
        store, args.customer, sagemaker.lock_wait_s, sagemaker.lock_stale_s
    ) as lease:
        manifest = rollback(store, args.customer, args.kind, lease.fence)
    entry = manifest.models[args.kind]
    print(
        f"{args.customer} {args.kind} now serves v{entry.version}: "
        + ", ".join((entry.targets or {}).values())
    )
    return 0


def run_invoke(args: argparse.Namespace) -> int:
    from mme_factory.inference_client import InferenceClient

    settings = load_settings(args.settings)
    client = InferenceClient.from_settings(settings)
    target = client.target(args.customer, args.kind, args.role)
    inputs = describe(args.kind).smoke_request(args.text)
    result = client.invoke_target(target.endpoint, target.target_model, args.kind, inputs)
    printable = {name: _printable(value) for name, value in result.outputs.items()}
    if args.json:
        print(
            json.dumps(
                {
                    "endpoint": target.endpoint,
                    "target_model": target.target_model,
                    "version": target.version,
                    "latency_ms": round(result.latency_ms, 1),
                    "attempts": result.attempts,
                    "outputs": printable,
                },
                indent=2,
            )
        )
        return 0
    print(
        f"{target.endpoint}  {target.target_model}  (v{target.version})  "
        f"{result.latency_ms:.0f} ms, {result.attempts} attempt(s)"
    )
    for row, text in enumerate(args.text):
        shown = ", ".join(f"{name}: {_short(values[row])}" for name, values in printable.items())
        print(f"{text!r} -> {shown}")
    return 0


def _short(row: list[object]) -> object:
    return row[0] if len(row) == 1 else row


def _printable(value: object) -> list[list[object]]:
    """Rows of an output tensor as JSON values: strings decoded, floats rounded, 8 per row."""
    rows = value.reshape(value.shape[0], -1).tolist()  # type: ignore[attr-defined]
    return [
        [
            v.decode() if isinstance(v, bytes) else round(v, 4) if isinstance(v, float) else v
            for v in row[:8]
        ]
        for row in rows
    ]
