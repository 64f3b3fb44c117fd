"""Parallel cold loads and PSS accounting against a real Triton behind mme_local."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import psutil
import pytest

from mme_factory.protocol import endpoint_path
from test_support.mme_local_harness import (
    ServiceProcess,
    clients,
    service_with_models,
)
from test_support.mme_local_models import infer_body, model_tarball, output_values

pytestmark = pytest.mark.integration

ENDPOINT = "dev-mme-parallel"
PREFIX = f"mme/{ENDPOINT}"
BALLAST_MB = 48
TARGETS = [f"acme/parallel-{index}/v1.tar.gz" for index in range(4)]
COLD = [f"acme/cold-{index}/v1.tar.gz" for index in range(2)]


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    root = tmp_path_factory.mktemp("mme-parallel")
    stored = {
        target: model_tarball(f"acme_parallel_{index}_v1", ballast_mb=BALLAST_MB, factor=index)
        for index, target in enumerate(TARGETS)
    } | {
        target: model_tarball(f"acme_cold_{index}_v1", ballast_mb=BALLAST_MB)
        for index, target in enumerate(COLD)
    }
    budget = {"MME_FACTORY_MEMORY__BUDGET": str(4 * 1024**3)}
    with service_with_models(root, ENDPOINT, stored, budget) as process:
        yield process


def _invoke(service: ServiceProcess, target: str) -> list[float]:
    answer = clients(service.url)[1].invoke_endpoint(
        EndpointName=ENDPOINT, TargetModel=target, Body=infer_body([1.0])
    )
    return output_values(answer["Body"].read())


def test_four_cold_loads_run_at_once_in_triton(service):
    started = time.monotonic()
    with ThreadPoolExecutor(len(TARGETS)) as pool:
        answers = list(pool.map(lambda target: _invoke(service, target), TARGETS))
    wall_s = time.monotonic() - started
    assert answers == [[float(index)] for index in range(len(TARGETS))]
    state = service.get_json(endpoint_path(ENDPOINT))
    assert state["peak_loads_in_flight"] == 4
    load_s = [model["timings_s"]["load"] for model in state["models"]]
    assert len(load_s) == 4
    assert wall_s < 0.9 * sum(load_s), f"loads overlapped: {wall_s:.1f} s for {load_s}"
    arguments = psutil.Process(state["triton_pid"]).cmdline()
    assert "--model-load-thread-count=4" in arguments


def test_memory_is_counted_by_proportional_share(service):
    for target in TARGETS:
        _invoke(service, target)
    time.sleep(1.0)  # the watcher reads memory every half second
    state = service.get_json(endpoint_path(ENDPOINT))
    assert 0 < state["memory_bytes"] < state["rss_bytes"], "stubs share pages: PSS < RSS"
    footprints = [state["target_models"][target]["footprint_bytes"] for target in TARGETS]
    assert all(BALLAST_MB * 1024**2 < size < state["memory_bytes"] for size in footprints)
    assert sum(footprints) < state["memory_bytes"], "Triton itself is no model's"
    models = {model["target_model"]: model["memory_bytes"] for model in state["models"]}
    assert [models[target] for target in TARGETS] == footprints


def test_warm_model_answers_while_others_load_in_triton(service):
    runtime = clients(service.url)[1]

    def invoke(target: str) -> float:
        started = time.monotonic()
        answer = runtime.invoke_endpoint(
            EndpointName=ENDPOINT, TargetModel=target, Body=infer_body([1.0])
        )
        answer["Body"].read()
        return time.monotonic() - started

    invoke(TARGETS[0])
    warm_s: list[float] = []
    with ThreadPoolExecutor(len(COLD)) as pool:
        loading = [pool.submit(invoke, target) for target in COLD]
        time.sleep(0.3)
        while not all(future.done() for future in loading):
            warm_s.append(invoke(TARGETS[0]))
        for future in loading:
            future.result()
    state = service.get_json(endpoint_path(ENDPOINT))
    load_s = [
        model["timings_s"]["load"] for model in state["models"] if model["target_model"] in COLD
    ]
    assert len(load_s) == 2 and len(warm_s) >= 3
    # Triton's SageMaker port would hold each of these calls until the loads were done.
    assert max(warm_s) < 0.5 * min(load_s), f"warm calls {warm_s} beside loads of {load_s} s"
