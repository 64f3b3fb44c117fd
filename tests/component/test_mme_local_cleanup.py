"""Dropping a model leaves nothing behind: not in the cache, not in the model server, not on disk.

Triton is faked in-process; `test_mme_local_cleanup_triton.py` checks the same on a real one.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from mme_factory.model_archive import ArchiveLimits
from mme_factory.settings import Settings
from mme_factory.store import LocalStore
from mme_local.aws_errors import AwsError
from mme_local.runtime import CachePolicy, EndpointRuntime
from mme_local.runtime.target_model import TargetModel
from mme_local.service import MmeLocalService
from test_support.fake_model_server import MIB, FakeModelServer
from test_support.mme_local_harness import (
    RuntimeScenario,
    ServiceInThread,
    clients,
    create_endpoint,
    run_runtime_scenario,
    settings_with_model,
    wait_in_service,
)
from test_support.mme_local_models import model_tarball, write_model

ACME = [TargetModel.parse(f"acme/m{i}/v1.tar.gz") for i in range(2)]
OTHER = TargetModel.parse("acmex/m0/v1.tar.gz")
ENDPOINT = "dev-mme-cleanup"


def _run(tmp_path: Path, scenario: RuntimeScenario, fits: int = 3, wait_s: float = 5.0) -> None:
    """Run `scenario` on an endpoint whose budget holds `fits` models, all of them stored."""
    for target in (*ACME, OTHER):
        write_model(tmp_path / "store", target.key, model_tarball())
    server = FakeModelServer()
    budget = server.base_bytes + fits * server.model_bytes + MIB
    policy = CachePolicy(budget, wait_s, ArchiveLimits(10 * MIB, 100))
    run_runtime_scenario(
        LocalStore(tmp_path / "store"), server, _models(tmp_path), policy, scenario
    )


def _models(tmp_path: Path) -> Path:
    return tmp_path / "models"


def _unpacked(models_dir: Path) -> set[str]:
    """The Triton names of the models unpacked in `models_dir`."""
    return {path.name for path in models_dir.iterdir()} if models_dir.is_dir() else set()


async def _until(condition: Callable[[], bool], timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


def test_unloading_a_prefix_withdraws_a_load_in_flight(tmp_path):
    async def scenario(runtime: EndpointRuntime, server: FakeModelServer) -> None:
        await runtime.invoke(OTHER, b"x", "a/b")
        server.load_s = 1.0
        waiting = asyncio.create_task(runtime.invoke(ACME[0], b"x", "a/b"))
        await _until(lambda: ACME[0].triton_name in server.loading)
        unloaded = await runtime.unload_prefix("acme/")
        assert server.loaded == {OTHER.triton_name}
        assert [entry.name for entry in runtime.cache.models()] == [OTHER.triton_name]
        assert _unpacked(_models(tmp_path)) == {OTHER.triton_name}
        assert not runtime.loading(ACME[0].triton_name)
        with pytest.raises(AwsError) as caught:
            await asyncio.wait_for(waiting, 5.0)
        assert caught.value.status == 503
        assert server.loaded == {OTHER.triton_name}  # and it does not come back later
        assert unloaded == [ACME[0].key]

    _run(tmp_path, scenario)


def test_a_load_asked_for_while_its_prefix_unloads_is_refused(tmp_path):
    async def scenario(runtime: EndpointRuntime, server: FakeModelServer) -> None:
        server.load_s = 1.0
        first = asyncio.create_task(runtime.invoke(ACME[0], b"x", "a/b"))
        await _until(lambda: ACME[0].triton_name in server.loading)
        unloading = asyncio.create_task(runtime.unload_prefix("acme/"))
        await asyncio.sleep(0.1)
        with pytest.raises(AwsError) as caught:
            await runtime.invoke(ACME[1], b"x", "a/b")
        assert caught.value.status == 503
        assert await unloading == [ACME[0].key]
        await asyncio.gather(first, return_exceptions=True)
        assert server.load_calls == [ACME[0].triton_name]
        assert server.loaded == set() and _unpacked(_models(tmp_path)) == set()

    _run(tmp_path, scenario)


def test_a_load_refused_for_memory_deletes_its_unpacked_files(tmp_path):
    async def scenario(runtime: EndpointRuntime, server: FakeModelServer) -> None:
        await runtime.invoke(ACME[0], b"x", "a/b")
        server.invoke_s = 2.0
        busy = asyncio.create_task(runtime.invoke(ACME[0], b"x", "a/b"))
        await asyncio.sleep(0.05)
        with pytest.raises(AwsError) as caught:
            await runtime.invoke(ACME[1], b"x", "a/b")
        assert caught.value.status in (429, 503)
        await _until(lambda: not runtime.loading(ACME[1].triton_name))
        assert ACME[1].triton_name not in server.load_calls  # refused before Triton, for memory
        assert _unpacked(_models(tmp_path)) == {ACME[0].triton_name}
        await busy

    _run(tmp_path, scenario, fits=0, wait_s=0.3)


def test_a_restart_of_the_model_server_deletes_the_models_it_held(tmp_path):
    async def scenario(runtime: EndpointRuntime, server: FakeModelServer) -> None:
        for target in ACME:
            await runtime.invoke(target, b"x", "a/b")
        assert _unpacked(_models(tmp_path)) == {target.triton_name for target in ACME}
        server.kill()
        with pytest.raises(AwsError) as caught:
            await runtime.invoke(ACME[0], b"x", "a/b")
        assert caught.value.status == 503
        await _until(lambda: runtime.ready and _unpacked(_models(tmp_path)) == set())
        assert server.starts == 2
        await runtime.invoke(ACME[0], b"x", "a/b")  # loads again, from freshly unpacked files
        assert _unpacked(_models(tmp_path)) == {ACME[0].triton_name}

    _run(tmp_path, scenario)


@pytest.fixture
def cleanup_settings(tmp_path: Path) -> Settings:
    return settings_with_model(tmp_path, f"mme/{ENDPOINT}/{ACME[0].key}", model_tarball())


def _service(settings: Settings) -> ServiceInThread:
    return ServiceInThread(MmeLocalService(settings, lambda name: FakeModelServer()))


def _endpoint_models(settings: Settings, endpoint: str = ENDPOINT) -> Path:
    return settings.state_dir / "mme_local" / "endpoints" / endpoint / "models"


def test_delete_endpoint_deletes_its_unpacked_models(cleanup_settings):
    with _service(cleanup_settings) as service:
        sagemaker, runtime = clients(service.url)
        create_endpoint(sagemaker, ENDPOINT, f"s3://bucket/mme/{ENDPOINT}/")
        runtime.invoke_endpoint(EndpointName=ENDPOINT, TargetModel=ACME[0].key, Body=b"{}")
        assert _unpacked(_endpoint_models(cleanup_settings)) == {ACME[0].triton_name}
        sagemaker.delete_endpoint(EndpointName=ENDPOINT)
        assert not _endpoint_models(cleanup_settings).exists()
        with pytest.raises(ClientError):
            sagemaker.describe_endpoint(EndpointName=ENDPOINT)


def test_models_left_by_an_earlier_run_are_swept_at_start_up(cleanup_settings):
    with _service(cleanup_settings) as service:
        create_endpoint(clients(service.url)[0], ENDPOINT, f"s3://bucket/mme/{ENDPOINT}/")
    # What a crash leaves: files of the endpoint that comes back, and of one deleted meanwhile.
    left = [
        _endpoint_models(cleanup_settings) / ACME[0].triton_name / "model" / "doubler",
        _endpoint_models(cleanup_settings, "dev-mme-gone") / OTHER.triton_name / "model",
    ]
    for folder in left:
        folder.mkdir(parents=True)
        (folder / "config.pbtxt").write_text("left by a crash")
    with _service(cleanup_settings) as service:
        sagemaker, runtime = clients(service.url)
        wait_in_service(sagemaker, ENDPOINT, max_attempts=50)
        assert not any(folder.exists() for folder in left)
        runtime.invoke_endpoint(EndpointName=ENDPOINT, TargetModel=ACME[0].key, Body=b"{}")
        assert _unpacked(_endpoint_models(cleanup_settings)) == {ACME[0].triton_name}
