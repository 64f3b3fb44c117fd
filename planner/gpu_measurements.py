"""What a GPU run measured per kind (`mme-factory plan --measured FILE`).

The file is the JSON `bench/gpu_check.py` writes (schema `mme-factory/gpu-check/1`): per kind
the export's dtype, the GPU memory one loaded model adds, and requests per second at batch
sizes 1, 8 and 32. On GPU instance types its memory per model replaces the weights and
activations measured on this machine's CPU, and its best requests per second sizes the
throughput bound; both are labelled with the device they were measured on.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from mme_factory.errors import MmeFactoryError
from mme_factory.model_kinds import kind_names
from planner.instance_catalog import InstanceType
from planner.sourced_figure import Figure
from planner.throughput import Throughput, local_cpu_throughput

SCHEMA = "mme-factory/gpu-check/1"


class GpuMeasurementError(MmeFactoryError):
    """The --measured file is unreadable or not a GPU check's results."""


class KindOnGpu(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    dtype: Literal["float16", "float32"]
    gpu_mib_per_model: float = Field(gt=0)
    request_ms: float = Field(gt=0)
    requests_per_s: dict[str, float] = Field(min_length=1)  # batch size -> requests per second
    tokens_per_s: dict[str, float] | None = None


class GpuCheck(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    schema_name: Literal["mme-factory/gpu-check/1"] = Field(alias="schema")
    device: str = Field(min_length=1)
    torch: str
    on_gpu: bool = True  # bench/gpu_check.py runs on the CPU where there is no GPU
    kinds: dict[str, KindOnGpu]

    def gpu_memory(self, kind: str) -> Figure | None:
        """MiB one loaded model of `kind` holds on the GPU, labelled with the device."""
        found = self.kinds.get(kind)
        return None if found is None else Figure.measured_on(self.device, found.gpu_mib_per_model)

    def throughput(self, kind: str) -> Throughput | None:
        """Requests per second at the batch size that served the most."""
        found = self.kinds.get(kind)
        if found is None:
            return None
        batch, rate = max(found.requests_per_s.items(), key=lambda item: item[1])
        return Throughput(rate, f"measured on {self.device}, batch {batch}", self.device)


def load_gpu_check(path: Path) -> GpuCheck:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise GpuMeasurementError(f"cannot read {path}: {error}") from None
    try:
        check = GpuCheck.model_validate_json(text)
    except ValidationError as error:
        problems = [
            f"{'.'.join(str(part) for part in detail['loc']) or '(top level)'}: {detail['msg']}"
            for detail in error.errors()
        ]
        raise GpuMeasurementError(
            f"{path} is not a {SCHEMA} result: " + "; ".join(problems)
        ) from None
    if not check.on_gpu:
        raise GpuMeasurementError(
            f"{path} was measured on {check.device}, not on a GPU: run bench/gpu_check.py on "
            "a machine with an NVIDIA GPU for figures a GPU endpoint can be planned from"
        )
    unknown = sorted(set(check.kinds) - set(kind_names()))
    if unknown:
        raise GpuMeasurementError(f"{path}: unknown model kinds {', '.join(unknown)}")
    return check


def instance_throughputs(
    instance: InstanceType, gpu_check: GpuCheck | None, warm_p50_ms: dict[str, float] | None
) -> dict[str, Throughput]:
    """Per kind, what one instance of `instance` serves: the GPU run's figure on a GPU instance
    type, else the local CPU run's (for a kind that run measured)."""
    found = {kind: local_cpu_throughput(ms) for kind, ms in (warm_p50_ms or {}).items() if ms > 0}
    if gpu_check is not None and instance.has_gpu:
        for kind in gpu_check.kinds:
            measured = gpu_check.throughput(kind)
            if measured is not None:
                found[kind] = measured
    return found
