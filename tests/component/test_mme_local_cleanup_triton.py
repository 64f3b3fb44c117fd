"""On a real Triton, a model dropped by an unload or by a restart of the service leaves nothing:
not loaded in Triton, not unpacked on disk."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from mme_factory.protocol import endpoint_path, unload_path
from mme_local.runtime.target_model import TargetModel
from test_support.mme_local_harness import (
    ServiceProcess,
    clients,
    service_with_models,
)
from test_support.mme_local_models import infer_body, model_tarball, output_values

pytestmark = pytest.mark.integration

ENDPOINT = "dev-mme-cleanup"
SLOW = TargetModel.parse("acme/slow/v1.tar.gz")
OTHER = TargetModel.parse("acmex/doubler/v1.tar.gz")
STORED = {
    SLOW.key: model_tarball("acme_slow_v1", load_s=3.0),
    OTHER.key: model_tarball("acmex_doubler_v1"),
}


def _models_dir(service: ServiceProcess) -> Path:
    return Path(service.state_dir) / "mme_local" / "endpoints" / ENDPOINT / "models"


def _unpacked(service: ServiceProcess) -> set[str]:
    folder = _models_dir(service)
    return {path.name for path in folder.iterdir()} if folder.is_dir() else set()


def _in_triton(service: ServiceProcess) -> set[str]:
    """The names of the models the endpoint's Triton holds."""
    triton = service.get_json(endpoint_path(ENDPOINT))["triton_url"]
    return {
        model["modelName"] for model in httpx.get(f"{triton}/models", timeout=10).json()["models"]
    }


def _invoke(service: ServiceProcess, target: TargetModel) -> list[float]:
    # One attempt: a retry would load the model again, after the unload.
    runtime = clients(service.url, Config(retries={"total_max_attempts": 1}, read_timeout=60))[1]
    answer = runtime.invoke_endpoint(
        EndpointName=ENDPOINT, TargetModel=target.key, Body=infer_body([1.0])
    )
    return output_values(answer["Body"].read())


def _until(condition: Callable[[], bool], timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def test_unloading_a_prefix_during_a_cold_load_leaves_nothing_loaded_or_unpacked(tmp_path):
    with service_with_models(tmp_path, ENDPOINT, STORED) as service:
        assert _invoke(service, OTHER) == [2.0]
        with ThreadPoolExecutor(1) as pool:
            waiting = pool.submit(_invoke, service, SLOW)
            _until(lambda: SLOW.triton_name in _unpacked(service))
            time.sleep(0.5)  # into Triton's load, which takes 3 s
            answer = httpx.post(
                f"{service.url}{unload_path(ENDPOINT)}", json={"prefix": "acme/"}, timeout=60
            )
            assert answer.status_code == 200
            assert _in_triton(service) == {OTHER.triton_name}
            assert _unpacked(service) == {OTHER.triton_name}
            with pytest.raises(ClientError) as caught:
                waiting.result(timeout=60)
        assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
        assert answer.json()["unloaded"] == [SLOW.key]
        time.sleep(1.0)
        assert _in_triton(service) == {OTHER.triton_name}  # nor does it come back later
        assert _invoke(service, OTHER) == [2.0]


def test_stopping_and_starting_the_service_leaves_no_unpacked_models(tmp_path):
    with service_with_models(tmp_path, ENDPOINT, {OTHER.key: STORED[OTHER.key]}) as service:
        assert _invoke(service, OTHER) == [2.0]
        assert _unpacked(service) == {OTHER.triton_name}
        service.stop()
        assert not _models_dir(service).exists()
        left = _models_dir(service) / OTHER.triton_name / "model"
        left.mkdir(parents=True)  # what a crash leaves behind
        service.start()
        # A restored endpoint keeps its saved InService status while its Triton starts.
        _until(lambda: service.get_json(endpoint_path(ENDPOINT))["ready"], 60)
        assert not left.exists()
        assert _invoke(service, OTHER) == [2.0]
        assert _unpacked(service) == {OTHER.triton_name}
