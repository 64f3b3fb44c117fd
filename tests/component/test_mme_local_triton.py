"""mme_local in front of a real Triton server: models load, fail and recover as on SageMaker."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import psutil
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from mme_factory.aws_clients import s3_client
from mme_factory.protocol import BINARY_MEDIA_TYPE, binary_content_type, endpoint_path
from mme_factory.settings import load_settings
from test_support.mme_local_harness import (
    ServiceProcess,
    clients,
    create_endpoint,
    service_with_models,
    wait_in_service,
)
from test_support.mme_local_models import (
    infer_body,
    model_files,
    model_tarball,
    output_values,
    tarball,
    write_model,
)

pytestmark = pytest.mark.integration

ENDPOINT = "dev-mme-triton"
DOUBLER = "acme/doubler/v1.tar.gz"
PREFIX = f"mme/{ENDPOINT}"
STORED = {
    "acme/doubler/v1.tar.gz": model_tarball("acme_doubler_v1"),
    "acme/tripler/v1.tar.gz": model_tarball("acme_tripler_v1", factor=3.0),
    "acme/broken/v1.tar.gz": model_tarball("acme_broken_v1", raise_at_load=True),
    "acme/noconfig/v1.tar.gz": tarball(model_files("acme_noconfig_v1", with_config=False)),
    "acme/corrupt/v1.tar.gz": model_tarball("acme_corrupt_v1")[:200],
}


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    root = tmp_path_factory.mktemp("mme-local")
    with service_with_models(root, ENDPOINT, STORED) as process:
        yield process


def _invoke(url: str, target: str, values: list[float], endpoint: str = ENDPOINT) -> list[float]:
    answer = clients(url)[1].invoke_endpoint(
        EndpointName=endpoint, TargetModel=target, Body=infer_body(values)
    )
    return output_values(answer["Body"].read())


def _model_error(url: str, target: str) -> dict:
    with pytest.raises(ClientError) as caught:
        _invoke(url, target, [1.0])
    assert caught.value.response["Error"]["Code"] == "ModelError"
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 424
    return caught.value.response


def test_target_models_load_on_first_call_and_answer(service):
    assert _invoke(service.url, "acme/doubler/v1.tar.gz", [1.0, 2.5]) == [2.0, 5.0]
    assert _invoke(service.url, "acme/tripler/v1.tar.gz", [1.0]) == [3.0]
    state = httpx.get(f"{service.url}{endpoint_path(ENDPOINT)}").json()
    loaded = {model["target_model"] for model in state["models"]}
    assert {"acme/doubler/v1.tar.gz", "acme/tripler/v1.tar.gz"} <= loaded


def test_binary_json_answer_keeps_its_content_type(service):
    header = json.dumps(
        {
            "inputs": [
                {
                    "name": "INPUT0",
                    "shape": [2],
                    "datatype": "FP32",
                    "parameters": {"binary_data_size": 8},
                }
            ],
            "outputs": [{"name": "OUTPUT0", "parameters": {"binary_data": True}}],
        }
    ).encode()
    body = header + b"\x00\x00\x80\x3f\x00\x00\x00\x40"
    content_type = binary_content_type(len(header))
    answer = clients(service.url)[1].invoke_endpoint(
        EndpointName=ENDPOINT,
        TargetModel="acme/doubler/v1.tar.gz",
        Body=body,
        ContentType=content_type,
    )
    assert answer["ContentType"].startswith(BINARY_MEDIA_TYPE)
    assert answer["Body"].read().endswith(b"\x00\x00\x00\x40\x00\x00\x80\x40")


def test_model_that_raises_at_load_is_a_model_error(service):
    response = _model_error(service.url, "acme/broken/v1.tar.gz")
    assert "refuses to load" in response["OriginalMessage"]
    assert _invoke(service.url, "acme/doubler/v1.tar.gz", [1.0]) == [2.0]


def test_tarball_without_config_is_a_model_error(service):
    response = _model_error(service.url, "acme/noconfig/v1.tar.gz")
    assert "config.pbtxt" in response["OriginalMessage"]


def test_corrupt_tarball_is_a_model_error(service):
    response = _model_error(service.url, "acme/corrupt/v1.tar.gz")
    assert "corrupt or truncated" in response["OriginalMessage"]
    assert _invoke(service.url, "acme/tripler/v1.tar.gz", [2.0]) == [6.0]


def test_bad_inference_request_is_a_model_error_with_tritons_status(service):
    with pytest.raises(ClientError) as caught:
        clients(service.url)[1].invoke_endpoint(
            EndpointName=ENDPOINT, TargetModel="acme/doubler/v1.tar.gz", Body=b'{"inputs": []}'
        )
    assert caught.value.response["Error"]["Code"] == "ModelError"
    assert caught.value.response["OriginalStatusCode"] == 400


def test_triton_killed_mid_traffic_gives_retryable_errors_then_recovers(service):
    create_endpoint(clients(service.url)[0], "dev-mme-kill", f"s3://bucket/{PREFIX}/")
    target = "acme/doubler/v1.tar.gz"
    assert _invoke(service.url, target, [1.0], "dev-mme-kill") == [2.0]
    pid = httpx.get(f"{service.url}{endpoint_path('dev-mme-kill')}").json()["triton_pid"]
    no_retry = Config(retries={"max_attempts": 1}, read_timeout=30)
    _, runtime = clients(service.url, no_retry)

    def call(_: int) -> str:
        try:
            runtime.invoke_endpoint(
                EndpointName="dev-mme-kill", TargetModel=target, Body=infer_body([1.0])
            )
            return "ok"
        except ClientError as error:
            return error.response["Error"]["Code"]

    with ThreadPoolExecutor(4) as pool:
        during = pool.map(call, range(200))
        time.sleep(0.05)
        os.kill(pid, signal.SIGKILL)
        outcomes = set(during)
    assert outcomes <= {"ok", "ServiceUnavailable", "ModelNotReadyException"}
    assert _invoke(service.url, "acme/tripler/v1.tar.gz", [1.0]) == [3.0]
    deadline = time.monotonic() + 30
    while call(0) != "ok":
        assert time.monotonic() < deadline, "endpoint did not recover after Triton was killed"
        time.sleep(0.2)
    state = httpx.get(f"{service.url}{endpoint_path('dev-mme-kill')}").json()
    assert state["triton_pid"] != pid
    backends = f"{service.state_dir}/mme_local/endpoints/dev-mme-kill/triton/backends/"
    stubs = [
        process.pid
        for process in psutil.process_iter(["cmdline"])
        if any(backends in part for part in process.info["cmdline"] or [])
        and "triton_python_backend_stub" in (process.info["cmdline"] or [""])[0]
    ]
    assert len(stubs) == len(state["models"]), "the killed Triton's stub processes are gone"


@pytest.fixture(scope="module")
def s3_service(moto_server, tmp_path_factory) -> Iterator[ServiceProcess]:
    root = tmp_path_factory.mktemp("mme-local-s3")
    environ = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "MME_FACTORY_STATE_DIR": str(root / "state"),
        "MME_FACTORY_STORE": "s3://mme-models",
        "MME_FACTORY_ENDPOINTS__S3_ENDPOINT_URL": moto_server.url,
    }
    previous = {key: os.environ.get(key) for key in environ}
    os.environ.update(environ)
    s3 = s3_client(load_settings(environ=environ))
    s3.create_bucket(Bucket="mme-models")
    s3.put_object(
        Bucket="mme-models",
        Key=f"{PREFIX}/acme/doubler/v1.tar.gz",
        Body=STORED["acme/doubler/v1.tar.gz"],
    )
    process = ServiceProcess(environ, root / "service.log")
    process.start()
    try:
        create_endpoint(clients(process.url)[0], ENDPOINT, f"s3://mme-models/{PREFIX}/")
        yield process
    finally:
        process.stop()
        for key, value in previous.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def test_target_model_is_downloaded_from_s3(s3_service):
    assert _invoke(s3_service.url, "acme/doubler/v1.tar.gz", [4.0]) == [8.0]
    response_target = "acme/missing/v1.tar.gz"
    with pytest.raises(ClientError) as caught:
        _invoke(s3_service.url, response_target, [1.0])
    assert caught.value.response["OriginalStatusCode"] == 404


def test_killed_service_restarts_with_its_endpoints_and_no_orphaned_triton(tmp_path):
    write_model(tmp_path / "store", f"{PREFIX}/acme/doubler/v1.tar.gz", STORED[DOUBLER])
    environ = {
        "MME_FACTORY_STATE_DIR": str(tmp_path / "state"),
        "MME_FACTORY_STORE": str(tmp_path / "store"),
    }
    first = ServiceProcess(environ, tmp_path / "first.log")
    first.start()
    try:
        create_endpoint(clients(first.url)[0], ENDPOINT, f"s3://bucket/{PREFIX}/")
        assert _invoke(first.url, DOUBLER, [1.0]) == [2.0]
        orphan = httpx.get(f"{first.url}{endpoint_path(ENDPOINT)}").json()["triton_pid"]
        assert first.process is not None
        first.process.kill()
        first.process.wait(timeout=10)
        assert psutil.pid_exists(orphan)
    finally:
        first.stop()
    second = ServiceProcess(environ, tmp_path / "second.log")
    second.start()
    try:
        wait_in_service(clients(second.url)[0], ENDPOINT, max_attempts=100)
        deadline = time.monotonic() + 30
        while not httpx.get(f"{second.url}{endpoint_path(ENDPOINT)}").json()["ready"]:
            assert time.monotonic() < deadline
            time.sleep(0.2)
        # The leftover server is stopped before the new one starts, so it is gone once ready.
        assert not psutil.pid_exists(orphan) or psutil.Process(orphan).status() == "zombie"
        assert _invoke(second.url, DOUBLER, [2.0]) == [4.0]
    finally:
        second.stop()


def test_endpoint_deleted_and_recreated_while_its_triton_starts_serves(service):
    sagemaker, name = clients(service.url)[0], "dev-mme-again"
    create_endpoint(sagemaker, name, f"s3://bucket/{PREFIX}/", wait=False)
    sagemaker.delete_endpoint(EndpointName=name)
    sagemaker.delete_endpoint_config(EndpointConfigName=f"{name}-config")
    sagemaker.delete_model(ModelName=f"{name}-model")
    create_endpoint(sagemaker, name, f"s3://bucket/{PREFIX}/")
    time.sleep(1.0)
    described = sagemaker.describe_endpoint(EndpointName=name)
    assert (described["EndpointStatus"], described.get("FailureReason")) == ("InService", None)
    assert _invoke(service.url, DOUBLER, [1.0], name) == [2.0]
