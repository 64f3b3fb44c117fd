"""`/metrics` as prometheus_client writes it, the churn gauges, and warm-up calls (fake Triton)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from mme_factory.protocol import WARMUP_ATTRIBUTE, endpoint_path
from mme_factory.settings import Settings
from mme_local.service import MmeLocalService
from test_support.fake_model_server import FakeModelServer
from test_support.mme_local_harness import (
    ServiceInThread,
    clients,
    create_endpoint,
    metric_samples,
    settings_with_model,
)
from test_support.mme_local_models import model_tarball, write_model

ENDPOINT = "dev-mme-metrics"
TARGETS = ["acme/a/v1.tar.gz", "acme/b/v1.tar.gz"]
NEW_GAUGES = (
    "MemoryResidentBytes",
    "MemoryReservedBytes",
    "ModelLoadsInFlight",
    "ModelEvictionsPerHour",
    "LeastRecentlyUsedModelAgeSeconds",
)


@pytest.fixture
def endpoint(tmp_path: Path) -> Iterator[ServiceInThread]:
    # Memory for one model: calling the second evicts the first.
    fake = FakeModelServer()
    budget = fake.base_bytes + fake.model_bytes + 1024 * 1024
    settings: Settings = settings_with_model(
        tmp_path,
        f"mme/{ENDPOINT}/{TARGETS[0]}",
        model_tarball(),
        MME_FACTORY_MEMORY__BUDGET=str(budget),
    )
    write_model(tmp_path / "store", f"mme/{ENDPOINT}/{TARGETS[1]}", model_tarball())
    with ServiceInThread(MmeLocalService(settings, lambda name: fake)) as service:
        create_endpoint(clients(service.url)[0], ENDPOINT, f"s3://bucket/mme/{ENDPOINT}/")
        yield service


def _invoke(service: ServiceInThread, target: str, attributes: str | None = None) -> None:
    extra = {"CustomAttributes": attributes} if attributes is not None else {}
    answer = clients(service.url)[1].invoke_endpoint(
        EndpointName=ENDPOINT, TargetModel=target, Body=b"{}", **extra
    )
    answer["Body"].read()


def test_metrics_text_parses_and_holds_the_churn_gauges(endpoint):
    for target in (TARGETS[0], TARGETS[1], TARGETS[1]):
        _invoke(endpoint, target)
    text = httpx.get(f"{endpoint.url}/metrics").text
    families = {family.name: family for family in text_string_to_metric_families(text)}
    assert families["Invocations"].type == "counter"
    assert families["ModelLatency"].type == "summary"
    for name in NEW_GAUGES:
        assert families[name].type == "gauge", name
    samples = metric_samples(text)
    label = f'{{endpoint="{ENDPOINT}"}}'
    assert samples[f"ModelEvictions_total{label}"] == 1
    assert samples[f"ModelEvictionsPerHour{label}"] == 1
    assert samples[f"LoadedModelCount{label}"] == 1
    assert samples[f"ModelLoadsInFlight{label}"] == 0
    assert 0 <= samples[f"LeastRecentlyUsedModelAgeSeconds{label}"] < 30
    assert samples[f"MemoryUsedBytes{label}"] > 0


def test_warmup_calls_count_as_invocations_not_as_customer_traffic(endpoint):
    _invoke(endpoint, TARGETS[0], attributes=WARMUP_ATTRIBUTE)
    _invoke(endpoint, TARGETS[0], attributes=f"trace=1,{WARMUP_ATTRIBUTE}")
    _invoke(endpoint, TARGETS[0])
    described = httpx.get(f"{endpoint.url}{endpoint_path(ENDPOINT)}").json()
    usage = described["target_models"][TARGETS[0]]
    assert usage["invocations_last_hour"] == 1
    assert usage["last_invoked_unix"] is not None and usage["loaded"] is True
    samples = metric_samples(httpx.get(f"{endpoint.url}/metrics").text)
    assert samples[f'Invocations_total{{endpoint="{ENDPOINT}"}}'] == 3
    for field in ("budget_bytes", "memory_bytes", "rss_bytes"):
        assert isinstance(described[field], int), field


def test_a_model_called_only_by_warmups_has_no_customer_traffic(endpoint):
    _invoke(endpoint, TARGETS[1], attributes=WARMUP_ATTRIBUTE)
    described = httpx.get(f"{endpoint.url}{endpoint_path(ENDPOINT)}").json()
    assert described["target_models"][TARGETS[1]]["invocations_last_hour"] == 0
    assert described["target_models"][TARGETS[1]]["last_invoked_unix"] is None
