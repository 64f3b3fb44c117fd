"""The mme_local HTTP service: SageMaker's control plane and runtime APIs on one port.

- `POST /` with `X-Amz-Target: SageMaker.<Op>`: the control-plane subset (JSON 1.1).
- `POST /endpoints/{name}/invocations`: InvokeEndpoint with `X-Amzn-SageMaker-Target-Model`.
- `GET /metrics`: Prometheus text; `GET /ping`: health;
  `GET /mme-local/endpoints/{name}`: the endpoint's memory (PSS and RSS), loaded models, sizes,
  load timings and, per TargetModel loaded since it started, footprint and customer traffic.
- `POST /mme-local/endpoints/{name}/unload` `{"prefix": "acme/"}`: unload the TargetModels under
  a key prefix (an offboarded customer's), which SageMaker leaves cached until evicted.

A call whose `X-Amzn-SageMaker-Custom-Attributes` header holds `mme-factory-warmup` is a
warm-up: it counts in `Invocations` and as use of its model, not as customer traffic.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from pathlib import Path
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from mme_factory.model_archive import ArchiveLimits
from mme_factory.settings import Settings
from mme_factory.store import ArtifactStore, LocalStore, open_store
from mme_factory.triton import TritonRuntime
from mme_local.aws_errors import (
    MAX_INVOKE_BODY_BYTES,
    AwsError,
    endpoint_not_found,
    internal_failure,
    validation_error,
)
from mme_local.control_plane import ControlPlane
from mme_local.control_state import ControlStateFile
from mme_local.endpoint_runtime import CachePolicy, EndpointRuntime
from mme_local.metrics import Metrics
from mme_local.model_server import ModelServer, TritonModelServer
from mme_local.prefix_unload import unload_route
from mme_local.request_body import MAX_CONTROL_BODY_BYTES, read_body, read_json_object
from mme_local.target_model import InvalidTargetModel, TargetModel

logger = logging.getLogger("mme_local")
TARGET_MODEL_HEADER = "x-amzn-sagemaker-target-model"
VARIANT_HEADER = "X-Amzn-Invoked-Production-Variant"
CUSTOM_ATTRIBUTES_HEADER = "x-amzn-sagemaker-custom-attributes"
WARMUP_ATTRIBUTE = "mme-factory-warmup"


def model_data_store(url: str, settings: Settings) -> ArtifactStore:
    """The store behind a ModelDataUrl; with a local store, `s3://bucket/k` is `<store>/k`."""
    if url.startswith("file://"):
        return LocalStore(Path(url[len("file://") :]))
    if url.startswith("s3://") and settings.is_local_store:
        _, _, prefix = url[len("s3://") :].partition("/")
        return LocalStore(Path(settings.store) / prefix)
    return open_store(url, settings)


class MmeLocalService:
    def __init__(
        self, settings: Settings, server_factory: Callable[[str], ModelServer] | None = None
    ) -> None:
        self.settings = settings
        self.root = settings.state_dir / "mme_local"
        self.metrics = Metrics()
        self.runtimes: dict[str, EndpointRuntime] = {}
        self.variants: dict[str, str] = {}
        self.server_factory = server_factory or self._triton_server
        self.control = ControlPlane(
            ControlStateFile(self.root / "state.json"),
            settings.region,
            self.start_endpoint,
            self.stop_endpoint,
        )
        # Starts and stops of one endpoint run in the order they were asked for, one at a time,
        # so a stop always finds what the start before it left, and a start never races one.
        self._lifecycle_locks: dict[str, asyncio.Lock] = {}
        self._lifecycle_tasks: set[asyncio.Task[None]] = set()

    def _triton_server(self, name: str) -> ModelServer:
        triton = self.settings.triton
        return TritonModelServer(
            TritonRuntime.from_settings(self.settings),
            (self.root / "endpoints" / name / "triton").resolve(),
            triton.server_start_timeout_s,
            triton.load_timeout_s,
            self.settings.mme_local.invoke_timeout_s,
            self.settings.mme_local.load_concurrency,
        )

    async def start_endpoint(self, name: str, spec: dict[str, Any]) -> None:
        """Create the endpoint's runtime and start its Triton in the background (Creating)."""
        local = self.settings.mme_local
        policy = CachePolicy(
            budget_bytes=self.settings.memory.budget_bytes,
            load_wait_s=local.model_load_wait_s,
            limits=ArchiveLimits.from_settings(local),
            load_concurrency=local.load_concurrency,
        )
        self.metrics.add_endpoint(name)
        runtime = EndpointRuntime(
            name,
            model_data_store(spec["model_data_url"], self.settings),
            self.server_factory(name),
            (self.root / "endpoints" / name / "models").resolve(),
            policy,
            self.metrics,
        )
        self.runtimes[name], self.variants[name] = runtime, spec["variant"]
        self._in_order(name, self._bring_up(name, runtime))

    def _in_order(self, name: str, change: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        """Run `change` after every earlier start or stop of endpoint `name` has finished."""
        lock = self._lifecycle_locks.setdefault(name, asyncio.Lock())

        async def ordered() -> None:
            async with lock:
                await change

        task = asyncio.create_task(ordered())
        self._lifecycle_tasks.add(task)
        task.add_done_callback(self._lifecycle_tasks.discard)
        return task

    def _current(self, name: str, runtime: EndpointRuntime) -> bool:
        """Whether `runtime` is still the endpoint's (not one deleted, maybe re-created since)."""
        return self.runtimes.get(name) is runtime

    async def _bring_up(self, name: str, runtime: EndpointRuntime) -> None:
        if not self._current(name, runtime):
            return  # deleted before its turn
        try:
            await runtime.start()
        except Exception as error:
            if self._current(name, runtime):
                self.control.set_status(name, "Failed", f"model server did not start: {error}")
            return
        # Deleted while it was starting: the stop queued behind this start takes it down.
        if self._current(name, runtime):
            self.control.set_status(name, "InService")

    async def stop_endpoint(self, name: str) -> None:
        """Forget the endpoint now; its server stops once a start in progress has finished."""
        runtime = self.runtimes.pop(name, None)
        self.metrics.remove_endpoint(name)
        self.variants.pop(name, None)
        if runtime is None:
            return
        runtime.close()
        starting = self._lifecycle_locks.setdefault(name, asyncio.Lock()).locked()
        stopping = self._in_order(name, runtime.stop())
        if not starting:
            await asyncio.shield(stopping)

    async def restore(self) -> None:
        """Bring back every endpoint the state file holds (after a restart of the service).

        Saved state never stops the service from starting: an endpoint that cannot be brought
        back comes back Failed, with the reason.
        """
        for name in list(self.control.state.endpoints):
            try:
                await self.start_endpoint(name, self.control.endpoint_spec(name))
            except Exception as error:
                reason = error.message if isinstance(error, AwsError) else str(error)
                logger.error("endpoint %s cannot be restored: %s", name, reason)
                self.control.set_status(name, "Failed", f"cannot be restored: {reason}")

    async def shutdown(self) -> None:
        for name in list(self.runtimes):
            await self.stop_endpoint(name)
        # Bounded: a start gives up after the server start timeout, and each stop follows it.
        while self._lifecycle_tasks:
            await asyncio.gather(*self._lifecycle_tasks, return_exceptions=True)

    async def control_plane(self, request: Request) -> Response:
        target = request.headers.get("x-amz-target", "")
        service, _, operation = target.partition(".")
        try:
            if service != "SageMaker" or not operation:
                raise AwsError(400, "UnknownOperationException", f"unknown target {target!r}")
            params = await read_json_object(request, MAX_CONTROL_BODY_BYTES)
            answer = await self.control.handle(operation, params)
        except AwsError as error:
            return error.response()
        except Exception as unexpected:
            logger.exception("control plane %s failed", operation)
            return internal_failure(unexpected).response()
        return Response(json.dumps(answer), media_type="application/x-amz-json-1.1")

    async def invoke_endpoint(self, request: Request) -> Response:
        started = time.perf_counter()
        name = request.path_params["name"]
        labels = {"endpoint": name}
        try:
            response, model_s = await self._invoke(request, name)
        except Exception as unexpected:
            if not isinstance(unexpected, AwsError):
                logger.exception("InvokeEndpoint %s failed", name)
            error = unexpected if isinstance(unexpected, AwsError) else internal_failure(unexpected)
            status_class = "Invocation4XXErrors" if error.status < 500 else "Invocation5XXErrors"
            self.metrics.add(status_class, **labels)
            return error.response()
        finally:
            self.metrics.add("Invocations", **labels)
        overhead = time.perf_counter() - started - model_s
        self.metrics.observe_seconds("OverheadLatency", max(overhead, 0.0), **labels)
        return response

    async def _invoke(self, request: Request, name: str) -> tuple[Response, float]:
        runtime = self.runtimes.get(name)
        if runtime is None:
            raise endpoint_not_found(name)
        body = await read_body(request, MAX_INVOKE_BODY_BYTES)
        try:
            target = TargetModel.parse(request.headers.get(TARGET_MODEL_HEADER))
        except InvalidTargetModel as error:
            raise validation_error(str(error)) from None
        content_type = request.headers.get("content-type", "application/json")
        warmup = WARMUP_ATTRIBUTE in request.headers.get(CUSTOM_ATTRIBUTES_HEADER, "")
        model_started = time.perf_counter()
        _, headers, answer = await runtime.invoke(
            target, body, content_type, customer_traffic=not warmup
        )
        model_s = time.perf_counter() - model_started
        answer_type = headers.get("content-type") or headers.get("Content-Type")
        variant = {VARIANT_HEADER: self.variants.get(name, "AllTraffic")}
        response = Response(answer, 200, variant, media_type=answer_type or "application/json")
        return response, model_s

    async def describe_runtime(self, request: Request) -> Response:
        runtime = self.runtimes.get(request.path_params["name"])
        if runtime is None:
            return JSONResponse({"error": "unknown endpoint"}, 404)
        return JSONResponse(runtime.describe())

    def app(self) -> Starlette:
        @contextlib.asynccontextmanager
        async def lifespan(_: Starlette) -> AsyncIterator[None]:
            await self.restore()
            try:
                yield
            finally:
                await self.shutdown()

        async def ping(_: Request) -> Response:
            return PlainTextResponse("ok")

        async def metrics(_: Request) -> Response:
            return Response(self.metrics.render(), media_type=CONTENT_TYPE_LATEST)

        return Starlette(
            routes=[
                Route("/", self.control_plane, methods=["POST"]),
                Route("/endpoints/{name}/invocations", self.invoke_endpoint, methods=["POST"]),
                Route("/ping", ping, methods=["GET"]),
                Route("/metrics", metrics, methods=["GET"]),
                Route("/mme-local/endpoints/{name}", self.describe_runtime, methods=["GET"]),
                unload_route(self.runtimes),
            ],
            lifespan=lifespan,
        )
