"""The endpoint's model cache: single-flight loads, LRU eviction under a budget, faults."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from mme_factory.model_archive import ArchiveLimits
from mme_factory.store import LocalStore
from mme_local.aws_errors import AwsError
from mme_local.runtime import CachePolicy, EndpointRuntime
from mme_local.runtime.model_cache import CacheChangedOutsideItsLock, LoadedModel, ModelCache
from mme_local.runtime.target_model import TargetModel
from test_support.fake_model_server import MIB, FakeModelServer
from test_support.mme_local_harness import RuntimeScenario, run_runtime_scenario
from test_support.mme_local_models import model_tarball, write_model

MODELS = [TargetModel.parse(f"acme/m{i}/v1.tar.gz") for i in range(6)]


def _run(tmp_path: Path, scenario: RuntimeScenario, fits: int = 3, wait_s: float = 5.0) -> None:
    """Run `scenario` on an endpoint whose budget holds `fits` models, all six in its store."""
    store_root = tmp_path / "store"
    for target in MODELS:
        write_model(store_root, target.key, model_tarball())
    server = FakeModelServer()
    budget = server.base_bytes + fits * server.model_bytes + MIB
    policy = CachePolicy(budget, wait_s, ArchiveLimits(10 * MIB, 100))
    run_runtime_scenario(LocalStore(store_root), server, tmp_path / "models", policy, scenario)


def test_lru_order_follows_use():
    cache = ModelCache()
    first, second = LoadedModel(MODELS[0]), LoadedModel(MODELS[1])

    async def load_both() -> None:
        async with cache.changing():
            cache.add(first)
            cache.add(second)

    asyncio.run(load_both())
    assert cache.least_recently_used_idle() is first
    cache.get(first.name)
    assert cache.least_recently_used_idle() is second
    second.in_flight = 1
    assert cache.least_recently_used_idle() is first
    assert cache.least_recently_used_idle(exclude={first.name}) is None


def test_cold_load_is_single_flight(tmp_path):
    async def scenario(runtime: EndpointRuntime, server: FakeModelServer) -> None:
        answers = await asyncio.gather(*(runtime.invoke(MODELS[0], b"x", "a/b") for _ in range(10)))
        assert all(status == 200 for status, _, _ in answers)
        assert server.load_calls == [MODELS[0].triton_name]

    _run(tmp_path, scenario)


def test_warm_model_is_not_blocked_by_a_cold_load(tmp_path):
    async def scenario(runtime: EndpointRuntime, server: FakeModelServer) -> None:
        await runtime.invoke(MODELS[0], b"x", "a/b")
        server.load_s = 1.0
        cold = asyncio.create_task(runtime.invoke(MODELS[1], b"x", "a/b"))
        await asyncio.sleep(0.1)
        started = time.monotonic()
        await runtime.invoke(MODELS[0], b"x", "a/b")
        assert time.monotonic() - started < 0.2
        assert not cold.done()
        await cold

    _run(tmp_path, scenario)


def test_least_recently_used_model_is_evicted_over_budget(tmp_path):
    async def scenario(runtime: EndpointRuntime, server: FakeModelServer) -> None:
        for target in (MODELS[0], MODELS[1], MODELS[2], MODELS[0], MODELS[3]):
            await runtime.invoke(target, b"x", "a/b")
        await runtime.memory.unloaded(MODELS[1].triton_name)  # the eviction follows the load
        assert server.unload_calls == [MODELS[1].triton_name]
        assert server.loaded == {MODELS[i].triton_name for i in (0, 2, 3)}
        assert server.peak_bytes <= runtime.policy.budget_bytes + server.model_bytes
        assert await server.resident_memory_bytes() <= runtime.policy.budget_bytes
        assert not (runtime.models_dir / MODELS[1].triton_name).exists()

    _run(tmp_path, scenario)


def test_model_with_requests_in_flight_is_never_evicted(tmp_path):
    async def scenario(runtime: EndpointRuntime, server: FakeModelServer) -> None:
        evicted: list[tuple[str, int]] = []
        remove = runtime.cache.remove

        def watched_remove(name: str) -> LoadedModel | None:
            entry = remove(name)
            if entry is not None:
                evicted.append((name, entry.in_flight))
            return entry

        runtime.cache.remove = watched_remove  # type: ignore[method-assign]
        await runtime.invoke(MODELS[0], b"x", "a/b")
        server.invoke_s = 0.5
        busy = asyncio.create_task(runtime.invoke(MODELS[0], b"x", "a/b"))
        await asyncio.sleep(0.05)
        server.invoke_s = 0.0
        # Only one model fits: the next loads beside the busy one (budget + one model), which
        # stays loaded until it drains; then memory goes back under the budget.
        await runtime.invoke(MODELS[1], b"x", "a/b")
        assert not busy.done() and not evicted
        assert (await busy)[0] == 200
        deadline = time.monotonic() + 3.0
        while await server.resident_memory_bytes() > runtime.policy.budget_bytes:
            assert time.monotonic() < deadline, "the drained model was never evicted"
            await asyncio.sleep(0.05)
        await runtime.invoke(MODELS[2], b"x", "a/b")
        assert len(evicted) == 2 and all(in_flight == 0 for _, in_flight in evicted)
        assert server.peak_bytes <= runtime.policy.budget_bytes + server.model_bytes
        await asyncio.sleep(0.1)
        assert await server.resident_memory_bytes() <= runtime.policy.budget_bytes

    _run(tmp_path, scenario, fits=1)


@pytest.mark.parametrize(
    ("failing", "invoked"),
    [("out_of_memory_loads", 2), ("out_of_memory_invokes", 1)],
    ids=["on_load", "on_invoke"],
)
def test_out_of_memory_evicts_the_lru_model_and_retries(tmp_path, failing, invoked):
    async def scenario(runtime: EndpointRuntime, server: FakeModelServer) -> None:
        await runtime.invoke(MODELS[0], b"x", "a/b")
        await runtime.invoke(MODELS[1], b"x", "a/b")
        setattr(server, failing, 1)
        status, _, _ = await runtime.invoke(MODELS[invoked], b"x", "a/b")
        assert status == 200
        assert server.unload_calls == [MODELS[0].triton_name]

    _run(tmp_path, scenario)


def test_still_loading_after_the_wait_limit_is_model_not_ready(tmp_path):
    async def scenario(runtime: EndpointRuntime, server: FakeModelServer) -> None:
        server.load_s = 0.6
        with pytest.raises(AwsError) as caught:
            await runtime.invoke(MODELS[0], b"x", "a/b")
        assert (caught.value.status, caught.value.code) == (429, "ModelNotReadyException")
        await asyncio.sleep(0.6)
        status, _, _ = await runtime.invoke(MODELS[0], b"x", "a/b")
        assert status == 200 and server.load_calls == [MODELS[0].triton_name]

    _run(tmp_path, scenario, wait_s=0.2)


def test_dead_model_server_gives_retryable_503_then_restarts(tmp_path):
    async def scenario(runtime: EndpointRuntime, server: FakeModelServer) -> None:
        await runtime.invoke(MODELS[0], b"x", "a/b")
        server.kill()
        with pytest.raises(AwsError) as caught:
            await runtime.invoke(MODELS[0], b"x", "a/b")
        assert (caught.value.status, caught.value.code) == (503, "ServiceUnavailable")
        await asyncio.sleep(0.1)
        status, _, _ = await runtime.invoke(MODELS[0], b"x", "a/b")
        assert status == 200 and server.starts == 2
        assert server.load_calls == [MODELS[0].triton_name] * 2

    _run(tmp_path, scenario)


def test_missing_target_model_is_a_model_error(tmp_path):
    async def scenario(runtime: EndpointRuntime, server: FakeModelServer) -> None:
        with pytest.raises(AwsError) as caught:
            await runtime.invoke(TargetModel.parse("acme/none/v1.tar.gz"), b"x", "a/b")
        assert (caught.value.status, caught.value.code) == (424, "ModelError")
        assert caught.value.fields["OriginalStatusCode"] == 404
        status, _, _ = await runtime.invoke(MODELS[0], b"x", "a/b")
        assert status == 200

    _run(tmp_path, scenario)


def test_reload_during_an_eviction_waits_for_it_to_finish(tmp_path):
    async def scenario(runtime: EndpointRuntime, server: FakeModelServer) -> None:
        await runtime.invoke(MODELS[0], b"x", "a/b")
        await runtime.invoke(MODELS[1], b"x", "a/b")
        server.unload_gate, server.out_of_memory_invokes = asyncio.Event(), 1
        # The 507 evicts MODELS[0]; its unload is held while a request for it arrives.
        evicting = asyncio.create_task(runtime.invoke(MODELS[1], b"x", "a/b"))
        await asyncio.wait_for(server.unloading.wait(), 5)
        reloading = asyncio.create_task(runtime.invoke(MODELS[0], b"x", "a/b"))
        await asyncio.sleep(0.3)
        server.unload_gate.set()
        assert (await evicting)[0] == 200
        assert (await reloading)[0] == 200
        status, _, _ = await runtime.invoke(MODELS[0], b"x", "a/b")
        assert status == 200, "the model the cache holds is the one the server has loaded"
        assert MODELS[0].triton_name in server.loaded
        assert (runtime.models_dir / MODELS[0].triton_name / "model").is_dir()

    _run(tmp_path, scenario)


def test_cache_refuses_changes_outside_its_serialisation_point():
    cache = ModelCache()

    async def main() -> None:
        with pytest.raises(CacheChangedOutsideItsLock):
            cache.add(LoadedModel(MODELS[0]))
        async with cache.changing():
            cache.add(LoadedModel(MODELS[0]))
        with pytest.raises(CacheChangedOutsideItsLock):
            cache.remove(MODELS[0].triton_name)
        assert MODELS[0].triton_name in cache

    asyncio.run(main())


def test_request_waiting_on_a_load_of_a_deleted_endpoint_gets_an_aws_error(tmp_path):
    async def scenario(runtime: EndpointRuntime, server: FakeModelServer) -> None:
        server.load_s = 1.0
        waiting = asyncio.create_task(runtime.invoke(MODELS[0], b"x", "a/b"))
        await asyncio.sleep(0.1)
        await runtime.stop()
        with pytest.raises(AwsError) as caught:
            await waiting
        assert (caught.value.status, caught.value.code) == (400, "ValidationError")
        assert "not found" in caught.value.message
        with pytest.raises(AwsError) as later:
            await runtime.invoke(MODELS[0], b"x", "a/b")
        assert later.value.code == "ValidationError"
        assert server.starts == 1, "a deleted endpoint's model server is never restarted"

    _run(tmp_path, scenario)
