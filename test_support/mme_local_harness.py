"""Run mme_local for tests: the service in a thread (fake Triton) or as a process (real one),
or one endpoint's runtime on a fake model server.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import uvicorn
from botocore.config import Config
from prometheus_client.parser import text_string_to_metric_families

from mme_factory.protocol import METRICS_ROUTE, PING_ROUTE
from mme_factory.settings import Settings, load_settings
from mme_factory.store import ArtifactStore
from mme_local.runtime import CachePolicy, EndpointRuntime
from mme_local.runtime.metrics import Metrics
from mme_local.service import MmeLocalService
from test_support.fake_model_server import FakeModelServer
from test_support.mme_local_models import write_model
from test_support.servers import free_port, stop_process, wait_for_http

TRITON_IMAGE = "763104351884.dkr.ecr.us-east-1.amazonaws.com/sagemaker-tritonserver:24.09-py3"
DOUBLER_BODY = b'{"inputs":[{"name":"INPUT0","shape":[3],"datatype":"FP32","data":[1,2,3]}]}'


def clients(url: str, config: Config | None = None) -> tuple[Any, Any]:
    """Unmodified boto3 clients; only `endpoint_url` points them here."""
    options: dict[str, Any] = {
        "config": config,
        "region_name": "us-east-1",
        "endpoint_url": url,
        "aws_access_key_id": "testing",
        "aws_secret_access_key": "testing",
    }
    return boto3.client("sagemaker", **options), boto3.client("sagemaker-runtime", **options)


def pooled_config(max_attempts: int = 5) -> Config:
    """Client settings for many concurrent callers: a 64-connection pool, a long read timeout."""
    return Config(
        retries={"max_attempts": max_attempts, "mode": "standard"},
        read_timeout=120,
        max_pool_connections=64,
    )


def create_endpoint(sagemaker: Any, name: str, model_data_url: str, wait: bool = True) -> None:
    sagemaker.create_model(
        ModelName=f"{name}-model",
        ExecutionRoleArn="arn:aws:iam::000000000000:role/mme",
        PrimaryContainer={
            "Image": TRITON_IMAGE,
            "ModelDataUrl": model_data_url,
            "Mode": "MultiModel",
            "MultiModelConfig": {"ModelCacheSetting": "Enabled"},
        },
    )
    sagemaker.create_endpoint_config(
        EndpointConfigName=f"{name}-config",
        ProductionVariants=[
            {
                "VariantName": "AllTraffic",
                "ModelName": f"{name}-model",
                "InstanceType": "ml.g4dn.xlarge",
                "InitialInstanceCount": 1,
            }
        ],
    )
    sagemaker.create_endpoint(EndpointName=name, EndpointConfigName=f"{name}-config")
    if wait:
        wait_in_service(sagemaker, name)


def wait_in_service(sagemaker: Any, name: str, max_attempts: int = 300) -> None:
    """Poll every 0.2 s until the endpoint is InService; WaiterError when it fails or times out."""
    sagemaker.get_waiter("endpoint_in_service").wait(
        EndpointName=name, WaiterConfig={"Delay": 0.2, "MaxAttempts": max_attempts}
    )


def settings_with_model(root: Path, key: str, data: bytes, **environ: str) -> Settings:
    """Settings on state `root/state` and a local store `root/store` that holds `data` at `key`.

    `environ` adds setting overrides (`MME_FACTORY_...`).
    """
    write_model(root / "store", key, data)
    return load_settings(
        environ={
            "MME_FACTORY_STATE_DIR": str(root / "state"),
            "MME_FACTORY_STORE": str(root / "store"),
            **environ,
        }
    )


RuntimeScenario = Callable[[EndpointRuntime, FakeModelServer], Awaitable[None]]


def run_runtime_scenario(
    store: ArtifactStore,
    server: FakeModelServer,
    models_dir: Path,
    policy: CachePolicy,
    scenario: RuntimeScenario,
) -> None:
    """Start endpoint `dev-mme-test`'s runtime on `server`, run `scenario`, always stop it."""

    async def main() -> None:
        runtime = EndpointRuntime("dev-mme-test", store, server, models_dir, policy, Metrics())
        await runtime.start()
        try:
            await scenario(runtime, server)
        finally:
            await runtime.stop()

    asyncio.run(main())


class ServiceInThread:
    """The service on a free loopback port inside this process."""

    def __init__(self, service: MmeLocalService) -> None:
        self.service = service
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            service.app(), host="127.0.0.1", port=self.port, log_level="warning"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> ServiceInThread:
        self.thread.start()
        wait_for_http(f"{self.url}{PING_ROUTE}", 10)
        return self

    def __exit__(self, *_: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


@contextlib.contextmanager
def service_with_models(
    root: Path, endpoint: str, stored: dict[str, bytes], environ: dict[str, str] | None = None
) -> Iterator[ServiceProcess]:
    """A running mme_local whose store holds `stored` (key -> tarball) under `endpoint`'s
    prefix, with the endpoint created; stopped by PID on exit."""
    prefix = f"mme/{endpoint}"
    for key, data in stored.items():
        write_model(root / "store", f"{prefix}/{key}", data)
    settings = {
        "MME_FACTORY_STATE_DIR": str(root / "state"),
        "MME_FACTORY_STORE": str(root / "store"),
        **(environ or {}),
    }
    with ServiceProcess(settings, root / "service.log") as process:
        create_endpoint(clients(process.url)[0], endpoint, f"s3://bucket/{prefix}/")
        yield process


class ServiceProcess:
    """`python -m mme_local` with settings from environment variables; stopped by PID.

    Also a context manager (start on entry, stop on exit) with helpers for the service's JSON
    routes and its `/metrics`.
    """

    def __init__(self, environ: dict[str, str], log_path: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.environ = {**os.environ, **environ, "MME_FACTORY_MME_LOCAL__PORT": str(self.port)}
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def state_dir(self) -> str:
        return str(Path(self.environ["MME_FACTORY_STATE_DIR"]).resolve())

    def start(self, timeout_s: float = 30.0) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "mme_local"],
                env=self.environ,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            wait_for_http(f"{self.url}{PING_ROUTE}", timeout_s, self.process)
        except (RuntimeError, TimeoutError):
            self.stop()
            raise

    def stop(self, timeout_s: float = 30.0) -> None:
        stop_process(self.process, timeout_s)
        time.sleep(0.1)

    def __enter__(self) -> ServiceProcess:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def get_json(self, path: str) -> Any:
        with urllib.request.urlopen(self.url + path, timeout=10) as response:
            return json.loads(response.read())

    def metrics(self) -> dict[str, float]:
        """The Prometheus text of `/metrics` as {sample name with labels: value}."""
        with urllib.request.urlopen(self.url + METRICS_ROUTE, timeout=10) as response:
            return metric_samples(response.read().decode())


def metric_samples(text: str) -> dict[str, float]:
    """Prometheus text, parsed by prometheus_client, as {`name{k="v",...}`: value}.

    Labels are sorted by name; counters' samples carry Prometheus's `_total` suffix.
    """
    samples: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f'{key}="{value}"' for key, value in sorted(sample.labels.items()))
            samples[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return samples
