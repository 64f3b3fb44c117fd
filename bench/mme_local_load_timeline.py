"""Where the time of slow requests in the mme_local load test goes, from timelines of loads.

mme_local keeps, for each recent cold load, the monotonic seconds at which it was asked for,
got a slot, saw an eviction of the same model finish, had its tarball fetched and unpacked, was
admitted by memory, was loaded by Triton, and was done (`recent_loads` of the endpoint's
description). Clients record the monotonic start
and end of each request; the clock is the machine's, shared by both processes. A slow request's
time is split by the phases of the load of its TargetModel that overlapped it; what no phase
covers is the request's own path (HTTP, Triton's answer, client retries).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

# (phase, start mark, end mark) of a load's timeline.
PHASES = (
    ("slot_wait", "asked", "slot"),
    ("own_unload_wait", "slot", "unload_waited"),
    ("fetch", "unload_waited", "fetched"),
    ("memory_wait", "fetched", "admitted"),
    ("triton_load", "admitted", "loaded"),
    ("after_load", "loaded", "done"),
)
MARKS = ("asked", "slot", "unload_waited", "fetched", "admitted", "loaded", "done")


@dataclass(frozen=True)
class Request:
    target: str
    started: float  # monotonic s
    ended: float
    ok: bool

    @property
    def latency_s(self) -> float:
        return self.ended - self.started


def _complete(load: dict) -> bool:
    marks = {mark for _, start, end in PHASES for mark in (start, end)}
    return all(isinstance(load.get(mark), float) for mark in marks)


def load_phases(loads: list[dict]) -> dict[str, dict[str, float]]:
    """Median, p95 and max seconds of each phase over the loads that finished."""
    done = [load for load in loads if _complete(load)]
    phases: dict[str, dict[str, float]] = {}
    for phase, start, end in (*PHASES, ("total", "asked", "done")):
        values = np.array([load[end] - load[start] for load in done])
        if len(values):
            phases[phase] = {
                "median_s": float(np.median(values)),
                "p95_s": float(np.percentile(values, 95)),
                "max_s": float(values.max()),
            }
    return phases


def slow_request_breakdown(
    requests: list[Request], loads: list[dict], threshold_s: float
) -> dict[str, object]:
    """Mean seconds per request slower than `threshold_s` spent in each phase of a load."""
    slow = [request for request in requests if request.latency_s > threshold_s]
    by_target: dict[str, list[dict]] = {}
    for load in loads:
        if _complete(load):
            by_target.setdefault(load["target_model"], []).append(load)
    totals = dict.fromkeys([phase for phase, _, _ in PHASES], 0.0)
    totals["no_load"] = 0.0
    loads_waited: list[int] = []
    for request in slow:
        covered, waited = 0.0, 0
        for load in by_target.get(request.target, []):
            if load["asked"] >= request.ended or load["done"] <= request.started:
                continue
            waited += 1
            for phase, start, end in PHASES:
                overlap = min(load[end], request.ended) - max(load[start], request.started)
                if overlap > 0:
                    totals[phase] += overlap
                    covered += overlap
        totals["no_load"] += max(request.latency_s - covered, 0.0)
        loads_waited.append(waited)
    count = len(slow)
    return {
        "threshold_s": threshold_s,
        "slow_requests": count,
        "mean_latency_s": float(np.mean([r.latency_s for r in slow])) if slow else 0.0,
        "mean_s_per_phase": {k: v / count for k, v in totals.items()} if count else {},
        "loads_overlapped": {str(n): c for n, c in sorted(Counter(loads_waited).items())},
    }


def warm_latency_ms(requests: list[Request], loads: list[dict]) -> dict[str, float]:
    """Latency percentiles of the requests that overlapped no load of their TargetModel."""
    spans: dict[str, list[tuple[float, float]]] = {}
    for load in loads:
        if isinstance(load.get("done"), float):
            spans.setdefault(load["target_model"], []).append((load["asked"], load["done"]))
    warm = [
        request.latency_s * 1000
        for request in requests
        if not any(
            asked < request.ended and done > request.started
            for asked, done in spans.get(request.target, [])
        )
    ]
    if not warm:
        return {"requests": 0}
    values = np.array(warm)
    return {
        "requests": len(warm),
        **{f"p{q}": float(np.percentile(values, q)) for q in (50, 95, 99)},
        "max": float(values.max()),
    }


def request_samples(
    requests: list[Request], loads: list[dict], threshold_s: float, limit: int = 40
) -> list[dict[str, object]]:
    """The slowest requests over `threshold_s`, each with the loads of its TargetModel that
    overlapped it, in seconds from the request's start."""
    slow = sorted(
        (request for request in requests if request.latency_s > threshold_s),
        key=lambda request: request.latency_s,
        reverse=True,
    )[:limit]
    samples = []
    for request in slow:
        overlapped = [
            {mark: round(load[mark] - request.started, 3) for mark in MARKS if mark in load}
            for load in loads
            if load["target_model"] == request.target
            and isinstance(load.get("done"), float)
            and load["asked"] < request.ended
            and load["done"] > request.started
        ]
        samples.append(
            {
                "target_model": request.target,
                "started": request.started,
                "latency_s": round(request.latency_s, 3),
                "loads": overlapped,
            }
        )
    return samples
