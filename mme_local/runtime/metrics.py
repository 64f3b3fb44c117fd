"""`/metrics` in Prometheus text through `prometheus_client`, named after SageMaker's MME metrics.

Latencies are in microseconds like CloudWatch's. Timings are summaries (`_sum`, `_count`);
`ModelCacheHit` is a summary of 1 (hit) and 0 (miss), so `_sum / _count` is CloudWatch's
Average of ModelCacheHit: the cache-hit ratio. Counters keep their CloudWatch names as family
names; Prometheus exposes their samples as `<name>_total` (`Invocations_total`).

Series labelled with an endpoint exist only while that endpoint does, as in CloudWatch: a write
naming any other endpoint (a request for a name that was never created, one finishing after
its endpoint was deleted) is dropped, so clients cannot grow the series without bound. So the
values live in this one store, dropped with their endpoint under one lock, and a collector
registered in the service's own `CollectorRegistry` exports them; gauges that depend on the
time of the scrape (the idle age of the least recently used model, evictions in the last hour)
are read from each endpoint when `/metrics` is scraped.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    Metric,
    SummaryMetricFamily,
)
from prometheus_client.registry import Collector

Labels = tuple[tuple[str, str], ...]
GaugeSource = Callable[[], dict[str, float]]

_HELP = {
    "Invocations": ("counter", "InvokeEndpoint requests, warm-up calls included"),
    "Invocation4XXErrors": ("counter", "InvokeEndpoint requests answered 4xx"),
    "Invocation5XXErrors": ("counter", "InvokeEndpoint requests answered 5xx"),
    "ModelLatency": ("summary", "time Triton took to answer, microseconds"),
    "OverheadLatency": ("summary", "time the service added around Triton, microseconds"),
    "ModelLoadingWaitTime": ("summary", "time a request waited for its model, microseconds"),
    "ModelDownloadingTime": ("summary", "time to download a TargetModel, microseconds"),
    "ModelExtractingTime": ("summary", "time to verify and unpack a TargetModel, microseconds"),
    "ModelLoadingTime": ("summary", "time Triton took to load a TargetModel, microseconds"),
    "ModelUnloadingTime": ("summary", "time Triton took to unload a TargetModel, microseconds"),
    "ModelCacheHit": ("summary", "1 per request whose model was loaded, 0 otherwise"),
    "ModelEvictions": ("counter", "models unloaded to stay under the memory budget"),
    "TritonRestarts": ("counter", "Triton processes restarted after dying"),
    "LoadedModelCount": ("gauge", "models loaded in Triton"),
    "MemoryUsedBytes": ("gauge", "proportional share (PSS) of Triton and its stub processes"),
    "MemoryResidentBytes": (
        "gauge",
        "resident memory (RSS) of Triton and its stubs; counts "
        "pages shared between stubs once per stub",
    ),
    "MemoryBudgetBytes": ("gauge", "memory budget of the endpoint's model cache"),
    "MemoryUtilization": ("gauge", "MemoryUsedBytes as a percentage of the budget"),
    "MemoryReservedBytes": ("gauge", "memory reserved for cold loads in flight"),
    "ModelLoadsInFlight": ("gauge", "cold loads in progress (download, unpack, Triton load)"),
    "ModelEvictionsPerHour": ("gauge", "models evicted in the last hour (sliding window)"),
    "LeastRecentlyUsedModelAgeSeconds": (
        "gauge",
        "seconds since the least recently used loaded model was last called",
    ),
}


class Metrics:
    """Thread-safe counters, gauges and summaries with labels, exported by prometheus_client."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: dict[str, dict[Labels, float]] = defaultdict(dict)
        self._counts: dict[str, dict[Labels, int]] = defaultdict(dict)
        self._endpoints: set[str] = set()
        self._sources: dict[str, GaugeSource] = {}
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(_StoreCollector(self))

    @staticmethod
    def _labels(labels: dict[str, str]) -> Labels:
        return tuple(sorted(labels.items()))

    def add_endpoint(self, endpoint: str) -> None:
        with self._lock:
            self._endpoints.add(endpoint)

    def remove_endpoint(self, endpoint: str) -> None:
        """Forget the endpoint and every series labelled with it."""
        with self._lock:
            self._endpoints.discard(endpoint)
            self._sources.pop(endpoint, None)
            for series in (*self._values.values(), *self._counts.values()):
                for key in [key for key in series if ("endpoint", endpoint) in key]:
                    del series[key]

    def watch(self, endpoint: str, source: GaugeSource) -> None:
        """Read `source()`'s gauges for `endpoint` at every scrape, while the endpoint exists."""
        with self._lock:
            if endpoint in self._endpoints:
                self._sources[endpoint] = source

    def _accepts(self, labels: dict[str, str]) -> bool:
        endpoint = labels.get("endpoint")
        return endpoint is None or endpoint in self._endpoints

    def add(self, name: str, amount: float = 1.0, **labels: str) -> None:
        key = self._labels(labels)
        with self._lock:
            if self._accepts(labels):
                self._values[name][key] = self._values[name].get(key, 0.0) + amount

    def set(self, name: str, value: float, **labels: str) -> None:
        with self._lock:
            if self._accepts(labels):
                self._values[name][self._labels(labels)] = value

    def observe(self, name: str, value: float, **labels: str) -> None:
        key = self._labels(labels)
        with self._lock:
            if not self._accepts(labels):
                return
            self._values[name][key] = self._values[name].get(key, 0.0) + value
            self._counts[name][key] = self._counts[name].get(key, 0) + 1

    def observe_seconds(self, name: str, seconds: float, **labels: str) -> None:
        self.observe(name, seconds * 1e6, **labels)

    def value(self, name: str, **labels: str) -> float:
        """A counter's or gauge's value, or a summary's sum."""
        with self._lock:
            return self._values[name].get(self._labels(labels), 0.0)

    def count(self, name: str, **labels: str) -> int:
        """How many observations a summary holds."""
        with self._lock:
            return self._counts[name].get(self._labels(labels), 0)

    def render(self) -> str:
        """The Prometheus text exposition (format 0.0.4) of every series."""
        return generate_latest(self.registry).decode()

    def snapshot(self) -> tuple[dict[str, dict[Labels, float]], dict[str, dict[Labels, int]]]:
        """Stored values and counts, plus each watched endpoint's gauges read now."""
        with self._lock:
            values = {name: dict(series) for name, series in self._values.items() if series}
            counts = {name: dict(series) for name, series in self._counts.items()}
            sources = dict(self._sources)
        for endpoint, source in sources.items():
            for name, value in source().items():
                values.setdefault(name, {})[(("endpoint", endpoint),)] = value
        return values, counts


class _StoreCollector(Collector):
    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Metric]:
        values, counts = self.metrics.snapshot()
        for name, (kind, text) in _HELP.items():
            series = values.get(name)
            if not series:
                continue
            names = sorted({label for labels in series for label, _ in labels})
            family: CounterMetricFamily | GaugeMetricFamily | SummaryMetricFamily
            if kind == "counter":
                family = CounterMetricFamily(name, text, labels=names)
            elif kind == "gauge":
                family = GaugeMetricFamily(name, text, labels=names)
            else:
                family = SummaryMetricFamily(name, text, labels=names)
            for labels, value in sorted(series.items()):
                label_values = [dict(labels).get(label, "") for label in names]
                if isinstance(family, SummaryMetricFamily):
                    family.add_metric(label_values, counts[name].get(labels, 0), value)
                else:
                    family.add_metric(label_values, value)
            yield family
