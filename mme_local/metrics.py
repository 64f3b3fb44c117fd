"""Prometheus text for `/metrics`, named after SageMaker's MME CloudWatch metrics.

Latencies are in microseconds like CloudWatch's. Timings are summaries (`_sum`, `_count`);
`ModelCacheHit` is a summary of 1 (hit) and 0 (miss), so `_sum / _count` is CloudWatch's
Average of ModelCacheHit: the cache-hit ratio.

Series labelled with an endpoint exist only while that endpoint does, as in CloudWatch: a write
naming any other endpoint (a request for a name that was never created, one finishing after
its endpoint was deleted) is dropped, so clients cannot grow the series without bound.
"""

from __future__ import annotations

import threading
from collections import defaultdict

Labels = tuple[tuple[str, str], ...]

_HELP = {
    "Invocations": ("counter", "InvokeEndpoint requests"),
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
    "MemoryUsedBytes": ("gauge", "resident memory of Triton and its stub processes"),
    "MemoryBudgetBytes": ("gauge", "memory budget of the endpoint's model cache"),
    "MemoryUtilization": ("gauge", "MemoryUsedBytes as a percentage of the budget"),
}


class Metrics:
    """Thread-safe counters, gauges and summaries with labels."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: dict[str, dict[Labels, float]] = defaultdict(dict)
        self._counts: dict[str, dict[Labels, int]] = defaultdict(dict)
        self._endpoints: set[str] = set()

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
            for series in (*self._values.values(), *self._counts.values()):
                for key in [key for key in series if ("endpoint", endpoint) in key]:
                    del series[key]

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
        with self._lock:
            return self._values[name].get(self._labels(labels), 0.0)

    def count(self, name: str, **labels: str) -> int:
        with self._lock:
            return self._counts[name].get(self._labels(labels), 0)

    def render(self) -> str:
        lines: list[str] = []
        with self._lock:
            for name, (kind, text) in _HELP.items():
                series = self._values.get(name)
                if not series:
                    continue
                lines += [f"# HELP {name} {text}", f"# TYPE {name} {kind}"]
                for labels, value in sorted(series.items()):
                    if kind == "summary":
                        count = self._counts[name].get(labels, 0)
                        lines.append(f"{name}_sum{_format(labels)} {value:g}")
                        lines.append(f"{name}_count{_format(labels)} {count}")
                    else:
                        lines.append(f"{name}{_format(labels)} {value:g}")
        return "\n".join(lines) + "\n"


def _format(labels: Labels) -> str:
    if not labels:
        return ""
    escaped = (
        (key, value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n"))
        for key, value in labels
    )
    return "{" + ",".join(f'{key}="{value}"' for key, value in escaped) + "}"
