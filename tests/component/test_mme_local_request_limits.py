"""What a client can make the service hold: request bodies and metric series are bounded."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from mme_factory.protocol import TARGET_MODEL_HEADER
from mme_factory.settings import Settings
from mme_local.control import EndpointSpec
from mme_local.routes import MAX_CONTROL_BODY_BYTES, MAX_INVOKE_BODY_BYTES
from mme_local.runtime.metrics import Metrics
from mme_local.service import MmeLocalService
from test_support.fake_model_server import FakeModelServer
from test_support.mme_local_harness import metric_samples, settings_with_model
from test_support.mme_local_models import model_tarball

ENDPOINT = "dev-mme-test"
CHUNK = 1024 * 1024


@pytest.fixture
def mme_settings(tmp_path: Path) -> Settings:
    return settings_with_model(tmp_path, f"mme/{ENDPOINT}/acme/doubler/v1.tar.gz", model_tarball())


class ChunkedRequest:
    """An ASGI request whose body arrives in 1 MiB chunks, `chunks` of them, with no length."""

    def __init__(self, path: str, headers: dict[str, str], chunks: int) -> None:
        self.scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
            "client": ("127.0.0.1", 1),
            "server": ("127.0.0.1", 80),
        }
        self.chunks, self.sent = chunks, 0
        self.status = 0
        self.body = b""

    async def receive(self) -> dict[str, Any]:
        if self.sent == self.chunks:
            await asyncio.sleep(3600)  # the client never finishes; only a disconnect ends this
        self.sent += 1
        return {"type": "http.request", "body": b"x" * CHUNK, "more_body": self.sent < self.chunks}

    async def send(self, message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
        elif message["type"] == "http.response.body":
            self.body += message.get("body", b"")

    async def run(self, app: Any) -> ChunkedRequest:
        await asyncio.wait_for(app(self.scope, self.receive, self.send), timeout=30)
        return self


def _service(settings: Settings) -> MmeLocalService:
    return MmeLocalService(settings, lambda name: FakeModelServer())


async def _with_endpoint(service: MmeLocalService) -> None:
    spec = EndpointSpec(variant="AllTraffic", model_data_url=f"s3://bucket/mme/{ENDPOINT}/")
    await service.endpoints.start_endpoint(ENDPOINT, spec, service.control.set_status)


def test_chunked_invoke_body_is_refused_once_past_6_mib(mme_settings):
    async def main() -> ChunkedRequest:
        service = _service(mme_settings)
        await _with_endpoint(service)
        headers = {TARGET_MODEL_HEADER: "acme/doubler/v1.tar.gz"}
        request = ChunkedRequest(f"/endpoints/{ENDPOINT}/invocations", headers, chunks=64)
        try:
            return await request.run(service.app())
        finally:
            await service.endpoints.shutdown()

    request = asyncio.run(main())
    assert request.status == 413
    assert request.sent == MAX_INVOKE_BODY_BYTES // CHUNK + 1
    assert str(MAX_INVOKE_BODY_BYTES) in json.loads(request.body)["message"]


def test_chunked_control_plane_body_is_refused_once_past_its_limit(mme_settings):
    async def main() -> ChunkedRequest:
        service = _service(mme_settings)
        headers = {"x-amz-target": "SageMaker.ListEndpoints"}
        return await ChunkedRequest("/", headers, chunks=64).run(service.app())

    request = asyncio.run(main())
    assert request.status == 413
    assert request.sent == MAX_CONTROL_BODY_BYTES // CHUNK + 1


class OneChunk(ChunkedRequest):
    def __init__(self, path: str, headers: dict[str, str], body: bytes) -> None:
        super().__init__(path, headers, chunks=1)
        self.content = body

    async def receive(self) -> dict[str, Any]:
        self.sent += 1
        return {"type": "http.request", "body": self.content, "more_body": False}


@pytest.mark.parametrize("body", [b"[" * 100_000, b"[]", b"null", b"\xff"])
def test_control_plane_body_that_is_not_a_json_object_is_a_400(mme_settings, body):
    async def main() -> ChunkedRequest:
        service = _service(mme_settings)
        headers = {"x-amz-target": "SageMaker.ListEndpoints"}
        return await OneChunk("/", headers, body).run(service.app())

    request = asyncio.run(main())
    assert request.status == 400
    assert json.loads(request.body)["__type"] == "ValidationException"


def test_unknown_endpoint_names_create_no_metric_series(mme_settings):
    async def main() -> str:
        service = _service(mme_settings)
        await _with_endpoint(service)
        app = service.app()
        try:
            for index in range(50):
                path = f"/endpoints/no-such-endpoint-{index}/invocations"
                request = await ChunkedRequest(path, {}, chunks=1).run(app)
                assert request.status == 400
            await ChunkedRequest(f"/endpoints/{ENDPOINT}/invocations", {}, chunks=1).run(app)
            return service.metrics.render()
        finally:
            await service.endpoints.shutdown()

    rendered = asyncio.run(main())
    assert "no-such-endpoint" not in rendered
    assert metric_samples(rendered)[f'Invocation4XXErrors_total{{endpoint="{ENDPOINT}"}}'] == 1


def test_a_deleted_endpoint_leaves_no_metric_series():
    metrics = Metrics()
    metrics.add_endpoint("a")
    metrics.add_endpoint("b")
    metrics.add("Invocations", endpoint="a")
    metrics.observe("ModelLatency", 5.0, endpoint="a", target_model="m/v1.tar.gz")
    metrics.add("Invocations", endpoint="b")
    metrics.remove_endpoint("a")
    metrics.add("Invocations", endpoint="a")  # a request that was in flight when it was deleted
    assert 'endpoint="a"' not in metrics.render()
    assert metrics.value("Invocations", endpoint="b") == 1.0
