"""The traffic a kind's endpoint must carry, and how many instances that takes.

Traffic is a peak in requests per second per kind: for the whole fleet (`--peak-rps`) or per
customer (`--peak-rps-per-customer`, multiplied by the customers planned for). An instance
carries what one of its GPU (or CPU) can compute: the requests per second measured on a GPU
(`--measured`, at its best batch size), or else one request at a time at the warm latency the
local Triton measured, a CPU figure. Every model on the instance shares that compute, so the
instance's throughput does not grow with the models it holds. Like memory, each instance is
loaded to at most the plan's utilisation of it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from planner.instance_catalog import InstanceType

MS_PER_S = 1000.0


@dataclass(frozen=True)
class Throughput:
    """Requests per second one instance serves for a kind, and where the figure comes from."""

    requests_per_s: float
    source: str
    device: str | None = None  # the GPU it was measured on; None for the local CPU run


def local_cpu_throughput(warm_p50_ms: float) -> Throughput:
    return Throughput(
        MS_PER_S / warm_p50_ms,
        f"local CPU Triton, one request at a time at the warm p50 of {warm_p50_ms:.1f} ms "
        "(a CPU figure)",
    )


def device_mismatch(throughput: Throughput, instance: InstanceType) -> str | None:
    """A note when a GPU figure sizes an instance type with another GPU (T4 vs H100)."""
    if throughput.device is None or instance.gpu is None:
        return None
    model = instance.gpu.split()[-1]
    if model.lower() in throughput.device.lower():
        return None
    return (
        f"requests/s measured on {throughput.device}, planned for {instance.name}'s "
        f"{instance.gpu}: another GPU, so that instance type's throughput bound is not measured"
    )


@dataclass(frozen=True)
class Traffic:
    """Peak requests per second per kind, for the fleet or per customer (never both)."""

    fleet_rps: dict[str, float] = field(default_factory=dict)
    per_customer_rps: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        both = sorted(set(self.fleet_rps) & set(self.per_customer_rps))
        if both:
            raise ValueError(f"give the peak of {', '.join(both)} for the fleet or per customer")

    @property
    def kinds(self) -> set[str]:
        return set(self.fleet_rps) | set(self.per_customer_rps)

    def peak_rps(self, kind: str, customers: int) -> float | None:
        if kind in self.fleet_rps:
            return self.fleet_rps[kind]
        if kind in self.per_customer_rps:
            return self.per_customer_rps[kind] * customers
        return None


def throughput_instances(peak_rps: float, throughput: Throughput, utilisation: float) -> int:
    """Instances that carry `peak_rps`, each at most `utilisation` of its throughput."""
    if throughput.requests_per_s <= 0:
        raise ValueError("an instance's throughput must be positive")
    return max(1, math.ceil(peak_rps / (throughput.requests_per_s * utilisation)))
