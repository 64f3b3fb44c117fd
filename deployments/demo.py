"""`make demo`: the whole job on the embedded default.

Brings the local stack up, onboards the sample customer through the `onboard-customer`
deployment, runs the `warmup` deployment, and prints what was built and where to look.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from mme_factory.settings import load_settings
from mme_factory.store import open_store

REPO = Path(__file__).resolve().parent.parent
ONBOARD = "onboard-customer/onboard-customer"
WARMUP = "warmup/warmup"


def run(name: str, parameters: dict, timeout_s: float) -> tuple[str, float]:
    from prefect.deployments import run_deployment

    started = time.monotonic()
    flow_run = run_deployment(
        name, parameters=parameters, timeout=timeout_s, poll_interval=3, as_subflow=False
    )
    state = flow_run.state.name if flow_run.state else "unknown"
    return state, time.monotonic() - started


def wait_for_deployments(timeout_s: float) -> None:
    from prefect.client.orchestration import get_client

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with get_client(sync_client=True) as client:
            names = {d.name for d in client.read_deployments()}
        if {"onboard-customer", "warmup"} <= names:
            return
        time.sleep(2)
    raise SystemExit(f"the deployments did not appear within {timeout_s:.0f} s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customer", default="acme")
    parser.add_argument("--data", default=str(REPO / "examples" / "customers" / "acme"))
    parser.add_argument("--timeout", type=float, default=1800)
    args = parser.parse_args()
    from deployments.local_stack import prefect_api_url

    settings = load_settings()
    os.environ.setdefault("PREFECT_API_URL", prefect_api_url(settings.prefect.port))
    wait_for_deployments(120)
    print(f"onboarding {args.customer} through the {ONBOARD} deployment ...", flush=True)
    onboard_state, onboard_s = run(
        ONBOARD, {"customer_id": args.customer, "data_uri": args.data}, args.timeout
    )
    print(f"onboard-customer: {onboard_state} in {onboard_s:.0f} s", flush=True)
    warm_state, warm_s = run(WARMUP, {}, 600)
    print(f"warmup: {warm_state} in {warm_s:.0f} s")
    manifest = (
        json.loads(
            open_store(settings.store, settings).read_bytes(f"registry/{args.customer}.json")
        )
        if onboard_state == "Completed"
        else {"models": {}}
    )
    print(f"\n{'kind':<13} {'endpoint':<22} {'TargetModel':<34} {'cold ms':>8} {'warm ms':>8}")
    for kind, entry in manifest["models"].items():
        for target in entry["targets"].values():
            smoke = (entry.get("smoke") or {}).get(target) or {}
            cold, warm = smoke.get("cold_ms", float("nan")), smoke.get("warm_ms", float("nan"))
            print(f"{kind:<13} {entry['endpoint']:<22} {target:<34} {cold:>8.0f} {warm:>8.0f}")
    ui = os.environ["PREFECT_API_URL"].rsplit("/api", 1)[0]
    print(
        f"\nPrefect UI: {ui}  (flow runs, artifacts: validation report, metrics, gate, "
        "packages, smoke latencies, warm-up table)"
    )
    print(
        f"try: .venv/bin/mme-factory invoke --customer {args.customer} --kind classifier "
        "--text 'my parcel never arrived'"
    )
    return 0 if onboard_state == warm_state == "Completed" else 1


if __name__ == "__main__":
    sys.exit(main())
