"""Cold loads of different models run at once, bounded, each with its memory reserved first."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

from mme_factory.model_archive import ArchiveLimits
from mme_factory.store import LocalStore
from mme_local.runtime import CachePolicy, EndpointRuntime
from mme_local.runtime.memory_ledger import MemoryLedger
from mme_local.runtime.model_server import ServerMemory
from mme_local.runtime.model_usage import (
    DEFAULT_FOOTPRINT_PER_TARBALL_BYTE,
    ModelUsage,
    SlidingHourCount,
)
from mme_local.runtime.target_model import TargetModel
from test_support.fake_model_server import MIB, FakeModelServer
from test_support.mme_local_harness import RuntimeScenario, run_runtime_scenario
from test_support.mme_local_models import model_tarball, write_model

MODELS = [TargetModel.parse(f"acme/m{i}/v1.tar.gz") for i in range(8)]


def _run(tmp_path: Path, scenario: RuntimeScenario, fits: int, load_s: float = 0.3) -> None:
    """Run `scenario` on an endpoint whose budget holds `fits` models; eight in its store."""
    store_root = tmp_path / "store"
    for target in MODELS:
        write_model(store_root, target.key, model_tarball())
    server = FakeModelServer(load_s=load_s)
    budget = server.base_bytes + fits * server.model_bytes + MIB
    policy = CachePolicy(budget, 10.0, ArchiveLimits(10 * MIB, 100), load_concurrency=4)
    run_runtime_scenario(LocalStore(store_root), server, tmp_path / "models", policy, scenario)


def _most_overlapping(intervals: list[tuple[str, float, float]]) -> int:
    """The largest number of load intervals in progress at one instant."""
    edges = sorted([(start, 1) for _, start, _ in intervals] + [(end, -1) for *_, end in intervals])
    running = most = 0
    for _, step in edges:
        running += step
        most = max(most, running)
    return most


async def _until_under_budget(runtime: EndpointRuntime, server: FakeModelServer) -> None:
    """Wait (at most 3 s) until the evictions that follow loads bring memory under budget."""
    deadline = time.monotonic() + 3.0
    while await server.resident_memory_bytes() > runtime.policy.budget_bytes:
        assert time.monotonic() < deadline, "memory stayed over budget"
        await asyncio.sleep(0.05)


async def _call_all(runtime: EndpointRuntime, targets: list[TargetModel]) -> None:
    answers = await asyncio.gather(*(runtime.invoke(t, b"x", "a/b") for t in targets))
    assert all(status == 200 for status, _, _ in answers)


def test_four_cold_loads_overlap_and_memory_stays_within_budget_plus_one_model(tmp_path):
    async def scenario(runtime: EndpointRuntime, server: FakeModelServer) -> None:
        await _call_all(runtime, MODELS[:4])
        starts = [start for _, start, _ in server.load_intervals]
        ends = [end for *_, end in server.load_intervals]
        assert len(server.load_intervals) == 4
        assert max(starts) < min(ends), "every load was in progress at one instant"
        assert runtime.cold.peak_in_flight == 4
        assert server.peak_bytes <= runtime.policy.budget_bytes + server.model_bytes

    _run(tmp_path, scenario, fits=4)


def test_a_fifth_load_waits_for_a_slot(tmp_path):
    async def scenario(runtime: EndpointRuntime, server: FakeModelServer) -> None:
        await _call_all(runtime, MODELS[:5])
        assert _most_overlapping(server.load_intervals) == 4
        first_end = min(end for *_, end in server.load_intervals)
        assert max(start for _, start, _ in server.load_intervals) >= first_end
        assert runtime.cold.peak_in_flight == 4

    _run(tmp_path, scenario, fits=8)


def test_parallel_loads_reserve_their_memory_and_stay_within_budget_plus_one_model(tmp_path):
    async def scenario(runtime: EndpointRuntime, server: FakeModelServer) -> None:
        await runtime.invoke(MODELS[0], b"x", "a/b")  # measures what a model of this kind costs
        reserved: list[int] = []
        admit = runtime.memory.admit

        async def watched_admit(name: str, estimate: Callable[[], int], wait_s: float) -> None:
            reserved.append(estimate())
            await admit(name, estimate, wait_s)

        runtime.memory.admit = watched_admit  # type: ignore[method-assign]
        await _call_all(runtime, MODELS[1:6])
        assert reserved == [server.model_bytes] * 5, "reserved from the measured footprint"
        assert server.peak_bytes <= runtime.policy.budget_bytes + server.model_bytes
        assert len(server.load_calls) == 6
        await _until_under_budget(runtime, server)

    _run(tmp_path, scenario, fits=3)


def test_a_load_beside_a_full_budget_starts_without_waiting_for_an_eviction(tmp_path):
    async def scenario(runtime: EndpointRuntime, server: FakeModelServer) -> None:
        for target in MODELS[:3]:
            await runtime.invoke(target, b"x", "a/b")
        server.unload_gate = asyncio.Event()  # no unload can finish until the test says so
        status, _, _ = await asyncio.wait_for(runtime.invoke(MODELS[3], b"x", "a/b"), 5)
        assert status == 200, "loaded and answered while every unload was held"
        assert server.unload_calls == [MODELS[0].triton_name], "the LRU model, after the load"
        assert server.peak_bytes <= runtime.policy.budget_bytes + server.model_bytes
        assert server.peak_bytes > runtime.policy.budget_bytes, "four models were in memory"
        server.unload_gate.set()
        await _until_under_budget(runtime, server)
        assert server.loaded == {target.triton_name for target in MODELS[1:4]}

    _run(tmp_path, scenario, fits=3)


def test_a_load_over_budget_plus_one_model_waits_for_an_eviction_to_free_memory(tmp_path):
    async def scenario(runtime: EndpointRuntime, server: FakeModelServer) -> None:
        for target in MODELS[:3]:
            await runtime.invoke(target, b"x", "a/b")
        server.unload_gate = asyncio.Event()
        both = asyncio.gather(*(runtime.invoke(t, b"x", "a/b") for t in MODELS[3:5]))
        await asyncio.wait_for(server.unloading.wait(), 5)
        await asyncio.sleep(0.3)
        # One fits beside the three; the other waits for an unload, counted until it is done.
        assert len(server.load_calls) == 4 and not both.done()
        assert server.peak_bytes <= runtime.policy.budget_bytes + server.model_bytes
        server.unload_gate.set()
        assert all(status == 200 for status, _, _ in await asyncio.wait_for(both, 5))
        assert server.peak_bytes <= runtime.policy.budget_bytes + server.model_bytes
        await _until_under_budget(runtime, server)

    _run(tmp_path, scenario, fits=3)


def test_warm_model_answers_while_four_loads_are_in_flight(tmp_path):
    async def scenario(runtime: EndpointRuntime, server: FakeModelServer) -> None:
        await runtime.invoke(MODELS[0], b"x", "a/b")
        server.load_s = 1.0
        cold = asyncio.gather(*(runtime.invoke(t, b"x", "a/b") for t in MODELS[1:5]))
        await asyncio.sleep(0.2)
        assert runtime.cold.in_flight == 4 and len(server.loading) == 4
        started = time.monotonic()
        status, _, _ = await runtime.invoke(MODELS[0], b"x", "a/b")
        assert status == 200 and time.monotonic() - started < 0.1
        assert not cold.done()
        await cold

    _run(tmp_path, scenario, fits=8)


def test_parallel_cold_loads_stay_single_flight_per_model(tmp_path):
    async def scenario(runtime: EndpointRuntime, server: FakeModelServer) -> None:
        await _call_all(runtime, [target for target in MODELS[:4] for _ in range(5)])
        assert sorted(server.load_calls) == sorted(t.triton_name for t in MODELS[:4])

    _run(tmp_path, scenario, fits=8)


def test_describe_gives_memory_and_per_target_model_usage_without_warmups(tmp_path):
    async def scenario(runtime: EndpointRuntime, server: FakeModelServer) -> None:
        await runtime.invoke(MODELS[0], b"x", "a/b", customer_traffic=False)
        await runtime.invoke(MODELS[1], b"x", "a/b")
        await runtime.invoke(MODELS[1], b"x", "a/b")
        await runtime.memory.refresh()
        described = runtime.describe()
        assert described["memory_bytes"] == await server.resident_memory_bytes()
        assert isinstance(described["rss_bytes"], int)
        usage = described["target_models"]
        assert usage[MODELS[0].key] == {
            "footprint_bytes": server.model_bytes,
            "loaded": True,
            "invocations_last_hour": 0,
            "last_invoked_unix": None,
        }
        assert usage[MODELS[1].key]["invocations_last_hour"] == 2
        assert time.time() - usage[MODELS[1].key]["last_invoked_unix"] < 5

    _run(tmp_path, scenario, fits=8)


def test_evicted_target_model_stays_described_as_not_loaded(tmp_path):
    async def scenario(runtime: EndpointRuntime, server: FakeModelServer) -> None:
        for target in MODELS[:2]:
            await runtime.invoke(target, b"x", "a/b")
        usage = runtime.describe()["target_models"]
        assert usage[MODELS[0].key]["loaded"] is False
        assert usage[MODELS[0].key]["footprint_bytes"] == server.model_bytes
        assert usage[MODELS[1].key]["loaded"] is True
        await runtime.memory.unloaded(MODELS[0].triton_name)  # the eviction follows the load
        gauges = runtime.gauges()
        assert gauges["ModelEvictionsPerHour"] == 1
        assert gauges["LeastRecentlyUsedModelAgeSeconds"] >= 0

    _run(tmp_path, scenario, fits=1)


def test_unmeasured_target_model_is_estimated_from_its_tarball_and_the_endpoint_ratio():
    usage = ModelUsage()
    assert usage.expected_footprint("a", 1000) == int(1000 * DEFAULT_FOOTPRINT_PER_TARBALL_BYTE)
    usage.loaded("a", 50_000, 1000)
    usage.loaded("b", 90_000, 1000)
    assert usage.expected_footprint("a", 1000) == 50_000, "its own last footprint"
    assert usage.expected_footprint("c", 2000) == 140_000, "tarball times the median ratio"


def test_sliding_hour_forgets_events_older_than_an_hour():
    count = SlidingHourCount()
    count.add(now=1_000.0)
    count.add(now=1_030.0)
    count.add(now=3_000.0)
    assert count.count(now=3_000.0) == 3
    assert count.count(now=4_700.0) == 1


def test_an_older_reading_never_replaces_a_newer_one():
    ledger = MemoryLedger(budget_bytes=100)
    assert ledger.publish(ServerMemory(2.0, 50, 80))
    assert not ledger.publish(ServerMemory(1.0, 10, 20))
    assert ledger.reading.pss_bytes == 50
    ledger.reserved["m"] = 30
    assert ledger.committed_bytes() == 80
    ledger.publish(ServerMemory(3.0, 70, 90, {"m": 20}))
    assert ledger.committed_bytes() == 70 + 10, "only what the load does not hold yet"
