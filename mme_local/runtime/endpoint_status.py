"""What an endpoint shows of itself: its gauges for `/metrics` and its description.

The description is `GET /mme-local/endpoints/<name>`: memory (PSS, RSS, budget, reserved),
loads in flight, the loaded models, per-TargetModel usage, and the timelines of recent loads
(monotonic seconds of this machine: when a load was asked for, got a slot, saw an eviction of
the same model finish, was fetched, was admitted by memory, was loaded by Triton and was done).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mme_local.endpoint_runtime import EndpointRuntime


def endpoint_gauges(runtime: EndpointRuntime) -> dict[str, float]:
    """The endpoint's gauges as of now."""
    memory = runtime.memory
    reading, budget = memory.ledger.reading, runtime.policy.budget_bytes
    least_recent = runtime.cache.least_recent_use()
    gauges = {
        "LoadedModelCount": float(len(runtime.cache)),
        "MemoryUsedBytes": float(reading.pss_bytes),
        "MemoryResidentBytes": float(reading.rss_bytes),
        "MemoryBudgetBytes": float(budget),
        "MemoryUtilization": 100.0 * reading.pss_bytes / budget,
        "MemoryReservedBytes": float(memory.ledger.reserved_bytes()),
        "ModelLoadsInFlight": float(runtime.cold.in_flight),
        "ModelEvictionsPerHour": float(memory.evictions.count()),
    }
    if least_recent is not None:
        gauges["LeastRecentlyUsedModelAgeSeconds"] = time.monotonic() - least_recent
    return gauges


def describe_endpoint(runtime: EndpointRuntime) -> dict[str, object]:
    memory = runtime.memory
    reading = memory.ledger.reading
    models = runtime.cache.models()
    return {
        "endpoint": runtime.name,
        "ready": runtime.ready,
        "triton_pid": runtime.server.pid,
        "triton_url": runtime.server.url,
        "budget_bytes": runtime.policy.budget_bytes,
        "memory_bytes": reading.pss_bytes,
        "rss_bytes": reading.rss_bytes,
        "reserved_bytes": memory.ledger.reserved_bytes(),
        "peak_memory_bytes": memory.peak_pss_bytes,
        "peak_rss_bytes": memory.peak_rss_bytes,
        "memory_read_s": round(reading.read_s, 4),
        "load_concurrency": runtime.policy.load_concurrency,
        "loads_in_flight": runtime.cold.in_flight,
        "peak_loads_in_flight": runtime.cold.peak_in_flight,
        "models": [entry.to_dict() for entry in models],
        "target_models": runtime.usage.describe({entry.target.key for entry in models}),
        "recent_loads": [dict(timeline) for timeline in runtime.cold.recent],
    }
