"""The Kubernetes baseline: every customer model in a pod of its own, in a fixed GPU-memory slice.

This is what the published case migrated from. Each model (each replica of it) runs in its own
pod, a serving process of its own: it holds one CUDA context in its slice besides the model's
weights and activations, and the CUDA and torch runtime in host memory. Its slice is that GPU
memory rounded up to the device plugin's unit (whole GiB); a node holds as many slices as its
GPU has units, and as many pods as its host memory holds after the OS and the node's agents.
Slices are reserved, not shared, so no utilisation headroom is kept. Nodes are EC2 instances at
their On-Demand price, plus the cluster's control plane. The figures and their sources are in
`planner/kubernetes_gpu_slices.yaml`; the per-process memory is `runtime_overhead`'s.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from mme_factory.capacity import instances_needed
from mme_factory.errors import MmeFactoryError
from planner.instance_catalog import MIB_PER_GIB
from planner.runtime_overhead import (
    CUDA_CONTEXT_GPU_MIB,
    CUDA_PROCESS_HOST_MIB,
    OS_AND_AGENTS_HOST_MIB,
)

DEFAULT_FILE = "kubernetes_gpu_slices.yaml"
GPU_SLICES = "GPU slices"
HOST_MEMORY = "host memory"


class SliceCatalogError(MmeFactoryError):
    """The GPU-slice baseline's file is unreadable or malformed, or a pod fits on no node."""


class SliceNode(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    vcpus: int = Field(gt=0)
    memory_gib: float = Field(gt=0)
    gpu: str
    gpu_memory_gib: float = Field(gt=0)
    price_per_hour: float = Field(gt=0)


class SliceCatalog(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    source: str = Field(min_length=1)
    retrieved: str = Field(pattern=r"^\d{4}-\d{2}-\d{2}$")
    region: str
    currency: str = "USD"
    hours_per_month: float = Field(730, gt=0)
    node: SliceNode
    slice_unit_gib: float = Field(gt=0)
    cluster_price_per_hour: float = Field(ge=0)

    @property
    def cluster_monthly(self) -> float:
        return self.cluster_price_per_hour * self.hours_per_month

    def describe(self) -> str:
        node = self.node
        return (
            "Kubernetes, one pod per customer model in a fixed slice of GPU memory (whole "
            f"{self.slice_unit_gib:g} GiB units), on EC2 {node.name} nodes ({node.gpu} "
            f"{node.gpu_memory_gib:g} GiB, {node.memory_gib:g} GiB host) at "
            f"{node.price_per_hour:g} {self.currency}/h, plus {self.cluster_price_per_hour:g} "
            f"{self.currency}/h for the cluster"
        )


def load_slice_catalog(path: Path | None = None) -> SliceCatalog:
    where = str(path) if path else f"planner/{DEFAULT_FILE}"
    try:
        if path is None:
            text = resources.files("planner").joinpath(DEFAULT_FILE).read_text("utf-8")
        else:
            text = path.read_text(encoding="utf-8")
        values = yaml.safe_load(text)
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        raise SliceCatalogError(f"cannot read the slice baseline in {where}: {error}") from None
    try:
        return SliceCatalog.model_validate(values)
    except ValidationError as error:
        raise SliceCatalogError(f"invalid slice baseline in {where}: {error}") from None


@dataclass(frozen=True)
class Pod:
    """One model alone in its serving process."""

    gpu_mib: float  # weights, activations and its own CUDA context
    host_mib: float  # its CPU-side steps and the CUDA and torch runtime


def pod_of(model_gpu_mib: float, cpu_side_host_mib: float = 0.0) -> Pod:
    """A pod holding a model of `model_gpu_mib` on the GPU and `cpu_side_host_mib` beside it."""
    return Pod(model_gpu_mib + CUDA_CONTEXT_GPU_MIB, cpu_side_host_mib + CUDA_PROCESS_HOST_MIB)


@dataclass(frozen=True)
class SliceBaseline:
    pods: int
    slice_gib: float
    pods_per_node: int
    bound_by: str  # "GPU slices" or "host memory"
    nodes: int
    monthly: float  # the nodes; the cluster's control plane is counted once per plan


def slice_baseline(
    pod: Pod, catalog: SliceCatalog, target_models: int, replicas: int = 1
) -> SliceBaseline:
    unit = catalog.slice_unit_gib
    slice_gib = max(1, math.ceil(pod.gpu_mib / (unit * MIB_PER_GIB))) * unit
    node = catalog.node
    by_gpu = math.floor(node.gpu_memory_gib / slice_gib)
    by_host = math.floor((node.memory_gib * MIB_PER_GIB - OS_AND_AGENTS_HOST_MIB) / pod.host_mib)
    pods_per_node, bound_by = min((by_gpu, GPU_SLICES), (by_host, HOST_MEMORY))
    if pods_per_node < 1:
        raise SliceCatalogError(
            f"a pod of {pod.gpu_mib:.0f} MiB GPU and {pod.host_mib:.0f} MiB host memory fits on "
            f"no {node.name} node"
        )
    nodes = instances_needed(target_models, pods_per_node, replicas)
    return SliceBaseline(
        pods=target_models * replicas,
        slice_gib=slice_gib,
        pods_per_node=pods_per_node,
        bound_by=bound_by,
        nodes=nodes,
        monthly=node.price_per_hour * catalog.hours_per_month * nodes,
    )
