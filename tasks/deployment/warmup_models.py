"""Warm every registered TargetModel: one small request each, with bounded concurrency."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from prefect import task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE

from mme_factory.aws_clients import sagemaker_runtime_client
from mme_factory.settings import Settings
from mme_factory.store import ArtifactStore, open_store
from mme_factory.triton.server import kserve_request

RETRYABLE = {
    "ModelNotReadyException",
    "ThrottlingException",
    "ServiceUnavailable",
    "InternalFailure",
}
WARMUP_INPUTS = {
    "embedding": {"text": ["warm-up"]},
    "classifier": {"text": ["warm-up"]},
    "autocomplete": {"text": ["Customer: hello"], "max_new_tokens": [1]},
}


@dataclass(frozen=True)
class WarmupTarget:
    customer: str
    kind: str
    endpoint: str
    target_model: str


@dataclass
class WarmupResult:
    customer: str
    kind: str
    endpoint: str
    target_model: str
    status: str  # "ok" or "failed"
    state: str  # "warm", "cold" or "unknown"
    latency_ms: float
    attempts: int
    error: str = ""


def registered_targets(store: ArtifactStore) -> list[WarmupTarget]:
    """Every current TargetModel in every customer manifest under `registry/`."""
    targets = []
    for key in store.list_keys("registry/"):
        if not key.endswith(".json"):
            continue
        manifest = json.loads(store.read_bytes(key))
        for kind, entry in sorted(manifest.get("models", {}).items()):
            for target in sorted(entry["targets"].values()):
                targets.append(WarmupTarget(manifest["customer"], kind, entry["endpoint"], target))
    return targets


def warm_one(client: Any, target: WarmupTarget, retries: int, cold_ms: float) -> WarmupResult:
    body = kserve_request(WARMUP_INPUTS[target.kind])
    started = time.perf_counter()
    error = ""
    for attempt in range(1, retries + 2):
        try:
            client.invoke_endpoint(
                EndpointName=target.endpoint,
                TargetModel=target.target_model,
                ContentType="application/json",
                Body=body,
            )["Body"].read()
            latency = (time.perf_counter() - started) * 1000
            state = "cold" if attempt > 1 or latency >= cold_ms else "warm"
            return WarmupResult(
                **asdict(target), status="ok", state=state, latency_ms=latency, attempts=attempt
            )
        except ClientError as failure:
            code = failure.response.get("Error", {}).get("Code", "")
            error = f"{code}: {failure.response.get('Error', {}).get('Message', '')}"[:300]
            if code not in RETRYABLE:
                break
        except BotoCoreError as failure:
            error = str(failure)[:300]
        if attempt <= retries:
            time.sleep(min(0.5 * 2**attempt, 8.0))
    return WarmupResult(
        **asdict(target),
        status="failed",
        state="unknown",
        latency_ms=(time.perf_counter() - started) * 1000,
        attempts=attempt,
        error=error,
    )


def warm_all(
    settings: Settings, concurrency: int, targets: list[WarmupTarget] | None = None
) -> list[WarmupResult]:
    """Warm `targets` (default: every registered TargetModel), `concurrency` at a time."""
    if targets is None:
        targets = registered_targets(open_store(settings.store, settings))
    client = sagemaker_runtime_client(settings, max_pool_connections=concurrency)
    sm = settings.sagemaker
    with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
        return list(
            pool.map(
                lambda t: warm_one(client, t, sm.invoke_retries, sm.cold_threshold_ms), targets
            )
        )


@task(name="warm-models", cache_policy=NO_CACHE)
def warm_models(settings: Settings, concurrency: int) -> list[WarmupResult]:
    """Invoke every registered model; attach the per-model table."""
    results = warm_all(settings, concurrency)
    create_table_artifact(
        [
            {
                "endpoint": r.endpoint,
                "TargetModel": r.target_model,
                "state": r.state,
                "latency ms": round(r.latency_ms, 1),
                "status": r.status,
                "error": r.error,
            }
            for r in results
        ]
        or [{"endpoint": "-", "TargetModel": "no registered models"}],
        key="warmup",
        description="Warm-up of every registered TargetModel",
    )
    return results
