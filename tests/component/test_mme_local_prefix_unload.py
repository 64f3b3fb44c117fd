"""mme_local unloads the TargetModels under a key prefix (an offboarded customer's), real Triton."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from mme_factory.protocol import endpoint_path, unload_path
from test_support.mme_local_harness import (
    ServiceProcess,
    clients,
    service_with_models,
)
from test_support.mme_local_models import infer_body, model_tarball, output_values

pytestmark = pytest.mark.integration

ENDPOINT = "dev-mme-unload"
PREFIX = f"mme/{ENDPOINT}"
STORED = {
    "acme/doubler/v1.tar.gz": model_tarball("acme_doubler_v1"),
    "acme/tripler/v2.tar.gz": model_tarball("acme_tripler_v2", factor=3.0),
    "acmex/doubler/v1.tar.gz": model_tarball("acmex_doubler_v1"),
}


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    root = tmp_path_factory.mktemp("unload")
    with service_with_models(root, ENDPOINT, STORED) as process:
        yield process


def invoke(service: ServiceProcess, target: str) -> list[float]:
    answer = clients(service.url)[1].invoke_endpoint(
        EndpointName=ENDPOINT, TargetModel=target, Body=infer_body([1.0])
    )
    return output_values(answer["Body"].read())


def loaded(service: ServiceProcess) -> set[str]:
    described = service.get_json(endpoint_path(ENDPOINT))
    return {model["target_model"] for model in described["models"]}


def unload(service: ServiceProcess, body: object, endpoint: str = ENDPOINT) -> httpx.Response:
    return httpx.post(f"{service.url}{unload_path(endpoint)}", json=body, timeout=60)


def test_unloading_a_prefix_unloads_only_the_models_under_it(service):
    for target in STORED:
        invoke(service, target)
    assert loaded(service) == set(STORED)
    answer = unload(service, {"prefix": "acme/"})
    assert answer.status_code == 200
    assert answer.json()["unloaded"] == ["acme/doubler/v1.tar.gz", "acme/tripler/v2.tar.gz"]
    assert loaded(service) == {"acmex/doubler/v1.tar.gz"}  # a longer customer id is not under it
    triton = service.get_json(endpoint_path(ENDPOINT))["triton_url"]
    ready = httpx.get(f"{triton}/models", timeout=10).json()
    assert len(ready["models"]) == 1  # Triton itself holds only the other customer's model
    assert invoke(service, "acmex/doubler/v1.tar.gz") == [2.0]
    assert unload(service, {"prefix": "acme/"}).json()["unloaded"] == []


def test_a_prefix_that_is_not_whole_folders_is_refused(service):
    for body in ({"prefix": "acme"}, {"prefix": ""}, {"prefix": "../"}, {}, ["acme/"]):
        assert unload(service, body).status_code == 400, body


def test_an_unknown_endpoint_is_404(service):
    assert unload(service, {"prefix": "acme/"}, endpoint="nowhere").status_code == 404
