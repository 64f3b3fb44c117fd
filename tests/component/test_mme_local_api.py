"""The SageMaker APIs of mme_local through unmodified boto3 clients (Triton faked in-process)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, WaiterError

from mme_factory.protocol import binary_content_type
from mme_factory.settings import Settings
from mme_local.service import MmeLocalService
from test_support.fake_model_server import FakeModelServer
from test_support.mme_local_harness import (
    TRITON_IMAGE,
    ServiceInThread,
    clients,
    create_endpoint,
    metric_samples,
    settings_with_model,
    wait_in_service,
)
from test_support.mme_local_models import model_tarball

ENDPOINT = "dev-mme-test"
TARGET = "acme/doubler/v1.tar.gz"


@pytest.fixture
def mme_settings(tmp_path: Path) -> Settings:
    return settings_with_model(tmp_path, f"mme/{ENDPOINT}/{TARGET}", model_tarball())


def _service(settings: Settings) -> ServiceInThread:
    fakes: dict[str, FakeModelServer] = {}
    return ServiceInThread(
        MmeLocalService(settings, lambda name: fakes.setdefault(name, FakeModelServer()))
    )


@pytest.fixture
def running(mme_settings: Settings) -> Iterator[ServiceInThread]:
    with _service(mme_settings) as service:
        yield service


@contextlib.contextmanager
def _restarted(settings: Settings) -> Iterator[tuple[Any, Any]]:
    """The service started again on `settings`, once its saved endpoint is back InService."""
    with _service(settings) as service:
        sagemaker, runtime = clients(service.url)
        wait_in_service(sagemaker, ENDPOINT, max_attempts=50)
        yield sagemaker, runtime


@pytest.fixture
def endpoint(running: ServiceInThread) -> ServiceInThread:
    sagemaker, _ = clients(running.url)
    create_endpoint(sagemaker, ENDPOINT, f"s3://bucket/mme/{ENDPOINT}/")
    return running


def _error(caught: pytest.ExceptionInfo[ClientError]) -> tuple[int, str]:
    response = caught.value.response
    return response["ResponseMetadata"]["HTTPStatusCode"], response["Error"]["Code"]


def _refused_model(
    running: ServiceInThread, name: str, container: dict[str, str]
) -> pytest.ExceptionInfo[ClientError]:
    """What CreateModel of `container` fails with; it must fail."""
    sagemaker, _ = clients(running.url)
    with pytest.raises(ClientError) as caught:
        sagemaker.create_model(
            ModelName=name,
            ExecutionRoleArn="arn:aws:iam::000000000000:role/mme",
            PrimaryContainer=container,
        )
    return caught


def test_endpoint_goes_creating_then_in_service(running):
    sagemaker, _ = clients(running.url)
    create_endpoint(sagemaker, ENDPOINT, f"s3://bucket/mme/{ENDPOINT}/", wait=False)
    assert sagemaker.describe_endpoint(EndpointName=ENDPOINT)["EndpointStatus"] in (
        "Creating",
        "InService",
    )
    wait_in_service(sagemaker, ENDPOINT, max_attempts=50)
    described = sagemaker.describe_endpoint(EndpointName=ENDPOINT)
    assert described["EndpointConfigName"] == f"{ENDPOINT}-config"
    assert described["ProductionVariants"][0]["VariantName"] == "AllTraffic"
    listed = sagemaker.list_endpoints(NameContains="mme")["Endpoints"]
    assert [item["EndpointName"] for item in listed] == [ENDPOINT]


def test_invoke_endpoint_with_target_model(endpoint):
    _, runtime = clients(endpoint.url)
    answer = runtime.invoke_endpoint(
        EndpointName=ENDPOINT, TargetModel=TARGET, Body=b"{}", ContentType="application/json"
    )
    assert answer["InvokedProductionVariant"] == "AllTraffic"
    assert answer["ContentType"] == "application/json"
    assert json.loads(answer["Body"].read())["echo"] == "{}"


def test_binary_json_content_type_passes_through(endpoint):
    _, runtime = clients(endpoint.url)
    content_type = binary_content_type(2)
    answer = runtime.invoke_endpoint(
        EndpointName=ENDPOINT, TargetModel=TARGET, Body=b"{}\x00\x01", ContentType=content_type
    )
    assert answer["ContentType"] == content_type


def test_unknown_endpoint_is_a_validation_error(endpoint):
    _, runtime = clients(endpoint.url)
    with pytest.raises(ClientError) as caught:
        runtime.invoke_endpoint(EndpointName="no-such-endpoint", TargetModel=TARGET, Body=b"{}")
    assert _error(caught) == (400, "ValidationError")


@pytest.mark.parametrize("target", ["../escape.tar.gz", "/abs/v1.tar.gz", "acme/v 1.tar.gz"])
def test_malformed_target_model_is_a_validation_error(endpoint, target):
    _, runtime = clients(endpoint.url)
    with pytest.raises(ClientError) as caught:
        runtime.invoke_endpoint(EndpointName=ENDPOINT, TargetModel=target, Body=b"{}")
    assert _error(caught) == (400, "ValidationError")


def test_missing_target_model_header_is_a_validation_error(endpoint):
    answer = httpx.post(f"{endpoint.url}/endpoints/{ENDPOINT}/invocations", content=b"{}")
    assert answer.status_code == 400
    assert answer.headers["x-amzn-ErrorType"] == "ValidationError"


def test_target_model_not_under_the_prefix_is_a_model_error(endpoint):
    _, runtime = clients(endpoint.url)
    with pytest.raises(ClientError) as caught:
        runtime.invoke_endpoint(EndpointName=ENDPOINT, TargetModel="acme/none.tar.gz", Body=b"{}")
    assert _error(caught) == (424, "ModelError")
    assert caught.value.response["OriginalStatusCode"] == 404


def test_oversized_body_is_refused_as_aws_does(endpoint):
    _, runtime = clients(endpoint.url)
    with pytest.raises(ClientError) as caught:
        runtime.invoke_endpoint(EndpointName=ENDPOINT, TargetModel=TARGET, Body=b"x" * 6_291_457)
    assert _error(caught) == (413, "413")
    assert "6291456" in str(caught.value)


def test_request_shape_is_checked_against_botocore_model(running):
    headers = {
        "X-Amz-Target": "SageMaker.CreateEndpoint",
        "Content-Type": "application/x-amz-json-1.1",
    }
    answer = httpx.post(running.url, headers=headers, content=b'{"EndpointName": 3}')
    assert answer.status_code == 400
    assert answer.json()["__type"] == "ValidationException"
    assert "EndpointConfigName" in answer.json()["message"]


def test_single_model_mode_is_refused(running):
    caught = _refused_model(running, "single", {"Image": "x", "ModelDataUrl": "s3://b/m.tar.gz"})
    assert _error(caught) == (400, "ValidationException")


@pytest.mark.parametrize("image", ["", "tritonserver:24.09", "localhost/", "registry.io/Repo:1"])
def test_image_without_a_registry_path_is_refused(running, image):
    caught = _refused_model(
        running, "bad-image", {"Image": image, "ModelDataUrl": "s3://b/mme/", "Mode": "MultiModel"}
    )
    assert _error(caught) == (400, "ValidationException")
    assert "registry path" in str(caught.value)


def test_describe_model_shows_its_image(endpoint):
    sagemaker, _ = clients(endpoint.url)
    described = sagemaker.describe_model(ModelName=f"{ENDPOINT}-model")
    assert described["PrimaryContainer"]["Image"] == TRITON_IMAGE
    assert described["ModelArn"].endswith(f":model/{ENDPOINT}-model")
    with pytest.raises(ClientError) as caught:
        sagemaker.describe_model(ModelName="no-such-model")
    assert _error(caught) == (400, "ValidationException")


def test_describe_unknown_endpoint_is_a_validation_exception(running):
    sagemaker, _ = clients(running.url)
    with pytest.raises(ClientError) as caught:
        sagemaker.describe_endpoint(EndpointName="nothing-here")
    assert _error(caught) == (400, "ValidationException")


def test_delete_removes_endpoint_config_and_model(endpoint):
    sagemaker, runtime = clients(endpoint.url)
    sagemaker.delete_endpoint(EndpointName=ENDPOINT)
    sagemaker.delete_endpoint_config(EndpointConfigName=f"{ENDPOINT}-config")
    sagemaker.delete_model(ModelName=f"{ENDPOINT}-model")
    assert sagemaker.list_endpoints()["Endpoints"] == []
    with pytest.raises(ClientError) as caught:
        runtime.invoke_endpoint(EndpointName=ENDPOINT, TargetModel=TARGET, Body=b"{}")
    assert _error(caught) == (400, "ValidationError")


def test_endpoints_survive_a_restart_of_the_service(mme_settings):
    with _service(mme_settings) as first:
        create_endpoint(clients(first.url)[0], ENDPOINT, f"s3://bucket/mme/{ENDPOINT}/")
    with _restarted(mme_settings) as (_, runtime):
        answer = runtime.invoke_endpoint(EndpointName=ENDPOINT, TargetModel=TARGET, Body=b"{}")
        assert answer["InvokedProductionVariant"] == "AllTraffic"


def test_metrics_are_named_after_sagemaker_cloudwatch_metrics(endpoint):
    _, runtime = clients(endpoint.url)
    for _ in range(2):
        runtime.invoke_endpoint(EndpointName=ENDPOINT, TargetModel=TARGET, Body=b"{}")
    samples = metric_samples(httpx.get(f"{endpoint.url}/metrics").text)
    label = f'{{endpoint="{ENDPOINT}"}}'
    assert samples[f"Invocations_total{label}"] == 2
    assert samples[f"ModelCacheHit_sum{label}"] == 1
    assert samples[f"ModelCacheHit_count{label}"] == 2
    for name in (
        f'ModelLatency_count{{endpoint="{ENDPOINT}",target_model="{TARGET}"}}',
        f"OverheadLatency_count{label}",
        f"ModelLoadingWaitTime_sum{label}",
        f'ModelDownloadingTime_sum{{endpoint="{ENDPOINT}",target_model="{TARGET}"}}',
        f'ModelLoadingTime_sum{{endpoint="{ENDPOINT}",target_model="{TARGET}"}}',
        f"LoadedModelCount{label}",
        f"MemoryUsedBytes{label}",
        f"MemoryBudgetBytes{label}",
    ):
        assert name in samples, name


class _FailingServer(FakeModelServer):
    async def start(self) -> None:
        raise RuntimeError("tritonserver exited with 1 while starting")


def test_endpoint_whose_server_cannot_start_is_failed_with_a_reason(mme_settings):
    with ServiceInThread(MmeLocalService(mme_settings, lambda name: _FailingServer())) as running:
        sagemaker, _ = clients(running.url)
        with pytest.raises(WaiterError):
            create_endpoint(sagemaker, ENDPOINT, f"s3://bucket/mme/{ENDPOINT}/")
        described = sagemaker.describe_endpoint(EndpointName=ENDPOINT)
        assert described["EndpointStatus"] == "Failed"
        assert "exited with 1" in described["FailureReason"]


def test_tarball_larger_than_the_limit_is_refused_before_download(tmp_path):
    settings = settings_with_model(
        tmp_path,
        f"mme/{ENDPOINT}/{TARGET}",
        model_tarball() + b"\0" * 4096,
        MME_FACTORY_MME_LOCAL__MAX_EXTRACTED_SIZE="4096",
    )
    with _service(settings) as running:
        sagemaker, runtime = clients(running.url)
        create_endpoint(sagemaker, ENDPOINT, f"s3://bucket/mme/{ENDPOINT}/")
        with pytest.raises(ClientError) as caught:
            runtime.invoke_endpoint(EndpointName=ENDPOINT, TargetModel=TARGET, Body=b"{}")
        assert _error(caught) == (424, "ModelError")
        assert "max_extracted_size" in caught.value.response["OriginalMessage"]


def _delete_config_and_model(sagemaker: Any, name: str) -> None:
    sagemaker.delete_endpoint_config(EndpointConfigName=f"{name}-config")
    sagemaker.delete_model(ModelName=f"{name}-model")


def test_endpoint_outlives_its_config_and_model_across_a_restart(mme_settings):
    with _service(mme_settings) as first:
        sagemaker, runtime = clients(first.url)
        create_endpoint(sagemaker, ENDPOINT, f"s3://bucket/mme/{ENDPOINT}/")
        _delete_config_and_model(sagemaker, ENDPOINT)
        runtime.invoke_endpoint(EndpointName=ENDPOINT, TargetModel=TARGET, Body=b"{}")
    with _restarted(mme_settings) as (sagemaker, runtime):
        answer = runtime.invoke_endpoint(EndpointName=ENDPOINT, TargetModel=TARGET, Body=b"{}")
        assert answer["InvokedProductionVariant"] == "AllTraffic"
        described = sagemaker.describe_endpoint(EndpointName=ENDPOINT)
        assert [v["VariantName"] for v in described["ProductionVariants"]] == ["AllTraffic"]


@pytest.mark.parametrize("url", ["https://example.com/models/", "/var/models/", "s3:///x/"])
def test_model_data_url_that_is_not_a_prefix_is_refused_when_the_model_is_created(running, url):
    caught = _refused_model(
        running, "elsewhere", {"Image": TRITON_IMAGE, "ModelDataUrl": url, "Mode": "MultiModel"}
    )
    assert _error(caught) == (400, "ValidationException")
    assert "ModelDataUrl" in str(caught.value)


def _saved_state(settings: Settings, state: dict[str, Any]) -> Path:
    path = settings.state_dir / "mme_local" / "state.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(state))
    return path


def _endpoint_record(name: str, config: str, status: str) -> dict[str, Any]:
    return {
        "EndpointName": name,
        "EndpointArn": f"arn:aws:sagemaker:us-east-1:000000000000:endpoint/{name}",
        "EndpointConfigName": config,
        "EndpointStatus": status,
        "CreationTime": 1.0,
        "LastModifiedTime": 1.0,
    }


def _ftp_model_and_config() -> tuple[dict, dict]:
    """A saved model whose ModelDataUrl no endpoint can serve, and a config naming it."""
    model = {
        "ModelName": "ftp-model",
        "PrimaryContainer": {"Image": TRITON_IMAGE, "ModelDataUrl": "ftp://host/models/"},
    }
    config = {
        "EndpointConfigName": "ftp-config",
        "ProductionVariants": [{"VariantName": "AllTraffic", "ModelName": "ftp-model"}],
    }
    return model, config


def test_saved_endpoints_that_cannot_be_served_come_back_failed(mme_settings):
    model, config = _ftp_model_and_config()
    _saved_state(
        mme_settings,
        {
            "models": {"ftp-model": model},
            "endpoint_configs": {"ftp-config": config},
            "endpoints": {
                "orphaned": _endpoint_record("orphaned", "deleted-config", "InService"),
                "ftp": _endpoint_record("ftp", "ftp-config", "Creating"),
            },
        },
    )
    with _service(mme_settings) as running:
        sagemaker, _ = clients(running.url)
        for name, reason in (("orphaned", "deleted-config"), ("ftp", "ModelDataUrl")):
            described = sagemaker.describe_endpoint(EndpointName=name)
            assert described["EndpointStatus"] == "Failed"
            assert reason in described["FailureReason"]
        create_endpoint(sagemaker, ENDPOINT, f"s3://bucket/mme/{ENDPOINT}/")


def test_create_endpoint_on_a_model_it_cannot_serve_is_refused(mme_settings):
    model, config = _ftp_model_and_config()
    _saved_state(
        mme_settings, {"models": {"ftp-model": model}, "endpoint_configs": {"ftp-config": config}}
    )
    with _service(mme_settings) as running:
        sagemaker, _ = clients(running.url)
        with pytest.raises(ClientError) as caught:
            sagemaker.create_endpoint(EndpointName="ftp", EndpointConfigName="ftp-config")
        assert _error(caught) == (400, "ValidationException")
        assert sagemaker.list_endpoints()["Endpoints"] == []


def test_unreadable_saved_state_is_moved_aside_and_the_service_starts(mme_settings):
    path = _saved_state(mme_settings, {})
    path.write_text('{"endpoints": ["not", "records"]}')
    with _service(mme_settings) as running:
        sagemaker, _ = clients(running.url)
        assert sagemaker.list_endpoints()["Endpoints"] == []
    assert [p.name.split("-")[0] for p in path.parent.glob("state.json.unreadable-*")] == [
        "state.json.unreadable"
    ]


class _StartsThenDies(FakeModelServer):
    """A server whose start waits for `release`, then fails (as when a newer start killed it)."""

    def __init__(self) -> None:
        super().__init__()
        self.release, self.finished = threading.Event(), threading.Event()

    async def start(self) -> None:
        try:
            await asyncio.to_thread(self.release.wait, 10)
            raise RuntimeError("tritonserver exited with -9 while starting")
        finally:
            self.finished.set()


def test_endpoint_recreated_while_its_old_server_starts_is_not_failed_by_it(mme_settings):
    servers: list[FakeModelServer] = [_StartsThenDies(), FakeModelServer()]
    first = servers[0]
    assert isinstance(first, _StartsThenDies)
    with ServiceInThread(MmeLocalService(mme_settings, lambda name: servers.pop(0))) as running:
        sagemaker, runtime = clients(running.url)
        create_endpoint(sagemaker, ENDPOINT, f"s3://bucket/mme/{ENDPOINT}/", wait=False)
        sagemaker.delete_endpoint(EndpointName=ENDPOINT)
        _delete_config_and_model(sagemaker, ENDPOINT)
        create_endpoint(sagemaker, ENDPOINT, f"s3://bucket/mme/{ENDPOINT}/", wait=False)
        first.release.set()
        assert first.finished.wait(10)
        wait_in_service(sagemaker, ENDPOINT, max_attempts=50)
        time.sleep(0.3)
        described = sagemaker.describe_endpoint(EndpointName=ENDPOINT)
        assert described["EndpointStatus"] == "InService"
        assert "FailureReason" not in described
        runtime.invoke_endpoint(EndpointName=ENDPOINT, TargetModel=TARGET, Body=b"{}")


def test_delete_during_a_cold_load_answers_the_waiting_request_with_an_aws_error(mme_settings):
    slow = FakeModelServer(load_s=5.0)
    with ServiceInThread(MmeLocalService(mme_settings, lambda name: slow)) as running:
        sagemaker, _ = clients(running.url)
        _, runtime = clients(
            running.url, Config(retries={"total_max_attempts": 1}, read_timeout=30)
        )
        create_endpoint(sagemaker, ENDPOINT, f"s3://bucket/mme/{ENDPOINT}/")
        with ThreadPoolExecutor(1) as pool:
            waiting = pool.submit(
                runtime.invoke_endpoint, EndpointName=ENDPOINT, TargetModel=TARGET, Body=b"{}"
            )
            time.sleep(0.5)
            sagemaker.delete_endpoint(EndpointName=ENDPOINT)
            with pytest.raises(ClientError) as caught:
                waiting.result(timeout=20)
    assert _error(caught) == (400, "ValidationError")
    assert "not found" in caught.value.response["Error"]["Message"]


class _SlowToStop(FakeModelServer):
    async def stop(self) -> None:
        await asyncio.sleep(0.3)
        await super().stop()


def test_concurrent_deletes_of_one_endpoint_answer_once_and_refuse_the_rest(mme_settings):
    with ServiceInThread(MmeLocalService(mme_settings, lambda name: _SlowToStop())) as running:
        sagemaker, _ = clients(running.url)
        create_endpoint(sagemaker, ENDPOINT, f"s3://bucket/mme/{ENDPOINT}/")
        once, _ = clients(running.url, Config(retries={"total_max_attempts": 1}))

        def delete(_: int) -> int:
            try:
                once.delete_endpoint(EndpointName=ENDPOINT)
            except ClientError as error:
                return int(error.response["ResponseMetadata"]["HTTPStatusCode"])
            return 200

        with ThreadPoolExecutor(3) as pool:
            statuses = sorted(pool.map(delete, range(3)))
        assert statuses == [200, 400, 400]
        assert sagemaker.list_endpoints()["Endpoints"] == []


@pytest.mark.parametrize("name", ["../escape", "dev-mme-test\n", "x" * 64, "-leading"])
def test_endpoint_name_outside_the_api_pattern_is_refused_when_made(mme_settings, name):
    with _service(mme_settings) as running:
        sagemaker, _ = clients(running.url)
        create_endpoint(sagemaker, ENDPOINT, f"s3://bucket/mme/{ENDPOINT}/")
        with pytest.raises(ClientError) as caught:
            sagemaker.create_endpoint(EndpointName=name, EndpointConfigName=f"{ENDPOINT}-config")
        assert _error(caught) == (400, "ValidationException")
        assert [e["EndpointName"] for e in sagemaker.list_endpoints()["Endpoints"]] == [ENDPOINT]


def test_image_with_a_trailing_newline_is_refused(running):
    caught = _refused_model(
        running,
        "newline-image",
        {"Image": TRITON_IMAGE + "\n", "ModelDataUrl": "s3://b/mme/", "Mode": "MultiModel"},
    )
    assert _error(caught) == (400, "ValidationException")
