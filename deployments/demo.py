"""`make demo`: the whole job on the embedded default.

After `mme-factory up`, onboards the sample customer through the `onboard-customer`
deployment and runs the `warmup` deployment, both on the `mme-factory-local` pool's worker, and
prints what was built and where to look.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from deployments.local_stack import prefect_api_url
from deployments.work_pools import LOCAL_POOL, online_workers
from mme_factory.manifest import read_manifest
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
    print(f"  flow run {flow_run.name} on work pool {flow_run.work_pool_name}", flush=True)
    return state, time.monotonic() - started


def check_stack(api_url: str) -> None:
    """The deployments exist and a worker serves their pool, else a run would wait forever."""
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        names = {d.name for d in client.read_deployments()}
    if not {"onboard-customer", "warmup"} <= names:
        raise SystemExit("the deployments are missing: run `.venv/bin/mme-factory up` first")
    if not online_workers(api_url, LOCAL_POOL.name):
        raise SystemExit(
            f"no worker is online in work pool {LOCAL_POOL.name}: run "
            "`.venv/bin/mme-factory up` (see .mme-factory/logs/worker.log)"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customer", default="acme")
    parser.add_argument("--data", default=str(REPO / "examples" / "customers" / "acme"))
    parser.add_argument("--timeout", type=float, default=1800)
    args = parser.parse_args()
    settings = load_settings()
    os.environ.setdefault("PREFECT_API_URL", prefect_api_url(settings.prefect.port))
    check_stack(os.environ["PREFECT_API_URL"])
    print(f"onboarding {args.customer} through the {ONBOARD} deployment ...", flush=True)
    onboard_state, onboard_s = run(
        ONBOARD, {"customer_id": args.customer, "data_uri": args.data}, args.timeout
    )
    print(f"onboard-customer: {onboard_state} in {onboard_s:.0f} s", flush=True)
    warm_state, warm_s = run(WARMUP, {}, 600)
    print(f"warmup: {warm_state} in {warm_s:.0f} s")
    served = (
        read_manifest(open_store(settings.store, settings), args.customer).models
        if onboard_state == "Completed"
        else {}
    )
    print(f"\n{'kind':<13} {'endpoint':<22} {'TargetModel':<34} {'cold ms':>8} {'warm ms':>8}")
    for kind, entry in served.items():
        for target in (entry.targets or {}).values():
            smoke = (entry.smoke or {}).get(target)
            cold, warm = (smoke.cold_ms, smoke.warm_ms) if smoke else (float("nan"),) * 2
            print(f"{kind:<13} {entry.endpoint!s:<22} {target:<34} {cold:>8.0f} {warm:>8.0f}")
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
