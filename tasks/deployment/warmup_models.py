"""Warm every registered TargetModel: one small request each, with bounded concurrency."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from prefect import task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE

from mme_factory.aws_clients import sagemaker_runtime_client
from mme_factory.kserve import kserve_request
from mme_factory.manifest import RegisteredTarget, UnreadableManifest, read_registry
from mme_factory.model_kinds import describe
from mme_factory.settings import Settings
from mme_factory.store import open_store

RETRYABLE = {
    "ModelNotReadyException",
    "ThrottlingException",
    "ServiceUnavailable",
    "InternalFailure",
}


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


def warm_one(client: Any, target: RegisteredTarget, retries: int, cold_ms: float) -> WarmupResult:
    body = kserve_request(describe(target.kind).warmup_inputs)
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


def unreadable_result(manifest: UnreadableManifest) -> WarmupResult:
    """A manifest that could not be read, as a failed row of the warm-up table."""
    return WarmupResult(
        customer=manifest.customer,
        kind="-",
        endpoint="-",
        target_model=manifest.key,
        status="failed",
        state="unknown",
        latency_ms=0.0,
        attempts=0,
        error=f"unreadable manifest: {manifest.reason}"[:300],
    )


def warm_models(
    settings: Settings, concurrency: int, targets: list[RegisteredTarget] | None = None
) -> list[WarmupResult]:
    """Warm `targets` (default: every registered TargetModel), `concurrency` at a time.

    A manifest that cannot be read stops nobody else's warm-up: it is a failed row.
    """
    unreadable: list[UnreadableManifest] = []
    if targets is None:
        registry = read_registry(open_store(settings.store, settings))
        targets, unreadable = registry.targets, registry.unreadable
    client = sagemaker_runtime_client(settings, max_pool_connections=concurrency)
    sm = settings.sagemaker
    with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
        warmed = list(
            pool.map(
                lambda t: warm_one(client, t, sm.invoke_retries, sm.cold_threshold_ms), targets
            )
        )
    return warmed + [unreadable_result(manifest) for manifest in unreadable]


@task(name="warm-models", cache_policy=NO_CACHE)
def warm_models_task(settings: Settings, concurrency: int) -> list[WarmupResult]:
    """Invoke every registered model; attach the per-model table."""
    results = warm_models(settings, concurrency)
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
