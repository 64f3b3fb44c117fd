"""What an endpoint shows of itself: its gauges for `/metrics` and its description.

The description is `GET /mme-local/endpoints/<name>`: memory (PSS, RSS, budget, reserved),
loads in flight, the loaded models, per-TargetModel usage, and the timelines of recent loads
(monotonic seconds of this machine: when a load was asked for, got a slot, saw an eviction of
the same model finish, was fetched, was admitted by memory, was loaded by Triton and was done).
"""

from __future__ import annotations

import time

from mme_local.runtime.cache_policy import CachePolicy
from mme_local.runtime.cold_load import ColdLoad
from mme_local.runtime.endpoint_memory import EndpointMemory
from mme_local.runtime.model_cache import ModelCache
from mme_local.runtime.model_server import ModelServer
from mme_local.runtime.model_usage import ModelUsage


def endpoint_gauges(memory: EndpointMemory, cache: ModelCache, loads: ColdLoad) -> dict[str, float]:
    """The endpoint's gauges as of now."""
    reading, budget = memory.reading, memory.budget_bytes
    least_recent = cache.least_recent_use()
    gauges = {
        "LoadedModelCount": float(len(cache)),
        "MemoryUsedBytes": float(reading.pss_bytes),
        "MemoryResidentBytes": float(reading.rss_bytes),
        "MemoryBudgetBytes": float(budget),
        "MemoryUtilization": 100.0 * reading.pss_bytes / budget,
        "MemoryReservedBytes": float(memory.ledger.reserved_bytes()),
        "ModelLoadsInFlight": float(loads.in_flight),
        "ModelEvictionsPerHour": float(memory.evictions.count()),
    }
    if least_recent is not None:
        gauges["LeastRecentlyUsedModelAgeSeconds"] = time.monotonic() - least_recent
    return gauges


def describe_endpoint(
    name: str,
    ready: bool,
    server: ModelServer,
    policy: CachePolicy,
    memory: EndpointMemory,
    cache: ModelCache,
    loads: ColdLoad,
    usage: ModelUsage,
) -> dict[str, object]:
    reading = memory.reading
    models = cache.models()
    return {
        "endpoint": name,
        "ready": ready,
        "triton_pid": server.pid,
        "triton_url": server.url,
        "budget_bytes": policy.budget_bytes,
        "memory_bytes": reading.pss_bytes,
        "rss_bytes": reading.rss_bytes,
        "reserved_bytes": memory.ledger.reserved_bytes(),
        "peak_memory_bytes": memory.peak_pss_bytes,
        "peak_rss_bytes": memory.peak_rss_bytes,
        "memory_read_s": round(reading.read_s, 4),
        "load_concurrency": policy.load_concurrency,
        "loads_in_flight": loads.in_flight,
        "peak_loads_in_flight": loads.peak_in_flight,
        "models": [entry.to_dict() for entry in models],
        "target_models": usage.describe({entry.target.key for entry in models}),
        "recent_loads": [timeline.to_dict() for timeline in loads.recent],
    }
