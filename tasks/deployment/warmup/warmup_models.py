"""Warm the registered TargetModels that fit their endpoint, busiest first (`warmup_capacity`).

One small request each through the inference client (with its retries), with bounded
concurrency, marked as a warm-up so that the endpoint does not count it as customer traffic.
Models already loaded are called first, then the ones to load, so that what the loads evict is
never a model of the plan.
"""

from __future__ import annotations

import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from enum import StrEnum

from prefect import task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE

from mme_factory.errors import StoreError
from mme_factory.inference_client import InferenceClient, InferenceFailed
from mme_factory.manifest import RegisteredTarget, UnreadableManifest, read_registry
from mme_factory.model_kinds import describe
from mme_factory.naming import model_data_prefix
from mme_factory.protocol import WARMUP_ATTRIBUTE
from mme_factory.settings import Settings
from mme_factory.store import ArtifactStore, open_store
from tasks.deployment.warmup.usage_source import endpoint_usage
from tasks.deployment.warmup.warmup_capacity import MIB, EndpointPlan, PlannedModel, plan_endpoint


class WarmupStatus(StrEnum):
    OK = "ok"
    FAILED = "failed"
    SKIPPED = "skipped"  # left out of the plan: it does not fit its endpoint


class ModelState(StrEnum):
    """How a warm-up call found the model."""

    WARM = "warm"
    COLD = "cold"
    UNKNOWN = "unknown"
    OVER_CAPACITY = "over capacity"


@dataclass
class WarmupResult:
    customer: str
    kind: str
    endpoint: str
    target_model: str
    status: WarmupStatus
    state: ModelState
    latency_ms: float
    attempts: int
    error: str = ""
    footprint_bytes: int = 0
    footprint_source: str = ""
    invocations_last_hour: int = 0


@dataclass
class Warmup:
    results: list[WarmupResult]
    shortfalls: list[str] = field(default_factory=list)  # per endpoint with models left out
    # Per endpoint with models left out: instances that hold them all (None: one does not fit).
    instances_needed: dict[str, int | None] = field(default_factory=dict)


def warm_one(client: InferenceClient, target: RegisteredTarget, cold_ms: float) -> WarmupResult:
    """One warm-up call; cold when it was retried (still loading) or slower than `cold_ms`."""
    started = time.perf_counter()
    try:
        answer = client.invoke_target(
            target.endpoint,
            target.target_model,
            target.kind,
            describe(target.kind).warmup_inputs,
            custom_attributes=WARMUP_ATTRIBUTE,
        )
    except InferenceFailed as failure:
        return WarmupResult(
            **asdict(target),
            status=WarmupStatus.FAILED,
            state=ModelState.UNKNOWN,
            latency_ms=(time.perf_counter() - started) * 1000,
            attempts=failure.attempts,
            error=str(failure)[:300],
        )
    cold = answer.attempts > 1 or answer.latency_ms >= cold_ms
    return WarmupResult(
        **asdict(target),
        status=WarmupStatus.OK,
        state=ModelState.COLD if cold else ModelState.WARM,
        latency_ms=answer.latency_ms,
        attempts=answer.attempts,
    )


def warm_targets(
    settings: Settings, concurrency: int, targets: list[RegisteredTarget]
) -> list[WarmupResult]:
    """Call every one of `targets`, `concurrency` at a time, whether it fits or not."""
    client = InferenceClient.from_settings(settings, max_pool_connections=concurrency)
    cold_ms = settings.sagemaker.cold_threshold_ms
    with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
        return list(pool.map(lambda t: warm_one(client, t, cold_ms), targets))


def unreadable_result(manifest: UnreadableManifest) -> WarmupResult:
    """A manifest that could not be read, as a failed row of the warm-up table."""
    return WarmupResult(
        customer=manifest.customer,
        kind="-",
        endpoint="-",
        target_model=manifest.key,
        status=WarmupStatus.FAILED,
        state=ModelState.UNKNOWN,
        latency_ms=0.0,
        attempts=0,
        error=f"unreadable manifest: {manifest.reason}"[:300],
    )


def with_plan(result: WarmupResult, model: PlannedModel) -> WarmupResult:
    return replace(
        result,
        footprint_bytes=model.footprint_bytes,
        footprint_source=model.footprint_source,
        invocations_last_hour=model.usage.invocations_last_hour,
    )


def over_capacity_result(model: PlannedModel) -> WarmupResult:
    skipped = WarmupResult(
        **asdict(model.target),
        status=WarmupStatus.SKIPPED,
        state=ModelState.OVER_CAPACITY,
        latency_ms=0.0,
        attempts=0,
    )
    return with_plan(skipped, model)


def tarball_sizes(store: ArtifactStore, targets: list[RegisteredTarget]) -> dict[str, int]:
    """Bytes of each target's tarball; absent when the store cannot say."""
    sizes = {}
    for target in targets:
        try:
            sizes[target.target_model] = store.size(
                model_data_prefix(target.endpoint) + target.target_model
            )
        except StoreError:
            continue
    return sizes


def plan_warmup(
    settings: Settings, store: ArtifactStore, targets: list[RegisteredTarget]
) -> list[EndpointPlan]:
    """Per endpoint of `targets`: which to warm and which are over capacity."""
    by_endpoint: dict[str, list[RegisteredTarget]] = defaultdict(list)
    for target in targets:
        by_endpoint[target.endpoint].append(target)
    plans = []
    for endpoint, group in by_endpoint.items():
        usage = endpoint_usage(settings, endpoint)
        unmeasured = any(usage.model(t.target_model).footprint_bytes == 0 for t in group)
        sizes = tarball_sizes(store, group) if unmeasured and not usage.mean_footprint_bytes else {}
        plans.append(plan_endpoint(usage, group, sizes))
    return plans


def warm_planned(settings: Settings, concurrency: int, plans: list[EndpointPlan]) -> Warmup:
    """Loaded models first, then the ones to load; the others as over-capacity rows."""
    results = []
    for loaded in (True, False):
        phase = [m for plan in plans for m in plan.warm if m.usage.loaded is loaded]
        warmed = warm_targets(settings, concurrency, [m.target for m in phase])
        results += [with_plan(r, m) for r, m in zip(warmed, phase, strict=True)]
    results += [over_capacity_result(m) for plan in plans for m in plan.over_capacity]
    short = [plan for plan in plans if plan.over_capacity]
    return Warmup(
        results,
        [str(plan.shortfall()) for plan in short],
        {plan.endpoint: plan.instances_needed for plan in short},
    )


def warm_models(
    settings: Settings, concurrency: int, targets: list[RegisteredTarget] | None = None
) -> Warmup:
    """Warm what fits of `targets` (default: every registered TargetModel).

    A manifest that cannot be read stops nobody else's warm-up: it is a failed row.
    """
    unreadable: list[UnreadableManifest] = []
    store = open_store(settings.store, settings)
    if targets is None:
        registry = read_registry(store)
        targets, unreadable = registry.targets, registry.unreadable
    warmup = warm_planned(settings, concurrency, plan_warmup(settings, store, targets))
    warmup.results += [unreadable_result(manifest) for manifest in unreadable]
    return warmup


@task(name="warm-models", cache_policy=NO_CACHE)
def warm_models_task(settings: Settings, concurrency: int) -> Warmup:
    """Invoke every registered model that fits; attach the per-model table."""
    warmup = warm_models(settings, concurrency)
    create_table_artifact(
        [
            {
                "endpoint": r.endpoint,
                "TargetModel": r.target_model,
                "state": r.state,
                "latency ms": round(r.latency_ms, 1),
                "footprint MiB": round(r.footprint_bytes / MIB, 1),
                "footprint from": r.footprint_source,
                "calls last hour": r.invocations_last_hour,
                "status": r.status,
                "error": r.error,
            }
            for r in warmup.results
        ]
        or [{"endpoint": "-", "TargetModel": "no registered models"}],
        key="warmup",
        description="Warm-up of the registered TargetModels that fit their endpoint",
    )
    return warmup
