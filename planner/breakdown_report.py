"""The production estimate as a text table and as part of the plan's JSON document."""

from __future__ import annotations

from typing import Any

from planner import runtime_overhead
from planner.gpu_measurements import GpuCheck
from planner.production_estimate import KindEstimate
from planner.sourced_figure import Figure
from planner.text_table import text_table
from planner.weights_and_activations import TargetModelMeasurement

MODELED_MARK = "~"
DEVICE_MARK = "*"

LEGEND = [
    "Figures marked ~ are modeled (in part), * measured on the GPU named below (--measured);",
    "the others are measured here.",
    "  weights: parameters and buffers of the libtorch members' TorchScript, at their dtype",
    "  activations: peak of the live tensors one execution creates, run in-process on CPU at the",
    "    shape shown: the config's max_batch_size rows of the export's max_length tokens; a",
    "    generator also makes its default_max_new_tokens, with its key/value cache",
    "    Python-backend members hold no weights or activations here: their stubs are overhead",
    f"  overhead GPU: ~{runtime_overhead.CUDA_CONTEXT_GPU_MIB:,.0f} MiB CUDA context per "
    "instance of a Python-backend model on the GPU;",
    "    libtorch models share tritonserver's one context (0)",
    f"  overhead host: ~{runtime_overhead.CUDA_PROCESS_HOST_MIB:,.0f} MiB CUDA and torch runtime "
    "per instance of a Python-backend model",
    "    on the GPU; Python stubs on the CPU (the text steps) hold what their stub held on",
    "    the local run, less their weights",
    f"  /dev/shm: ~{runtime_overhead.PYTHON_STUB_SHM_MIB:,.0f} MiB shared-memory region per "
    "Python stub (triton.python_shm_default_bytes, set on the endpoints); tmpfs,",
    "    so counted in total host",
    "  reserve: the OS and SageMaker's agents, tritonserver and its CUDA context, once per",
    "    instance, out of the utilised memory",
]


def _cell(figure: Figure, applies: bool = True) -> str:
    """`-` where the column does not apply (GPU memory on a CPU instance type)."""
    if not applies:
        return "-"
    if not figure.sources and figure.mib == 0:
        return "0"
    mark = MODELED_MARK if figure.is_modeled else ""
    if figure.device is not None:
        mark = DEVICE_MARK + mark
    return f"{mark}{figure.mib:,.1f}" if figure.mib < 100 else f"{mark}{figure.mib:,.0f}"


def breakdown_lines(
    estimates: dict[str, list[KindEstimate]],
    has_gpu: dict[str, bool],
    utilisation: float,
    gpu_check: GpuCheck | None = None,
) -> list[str]:
    rows = []
    for instance_type, kinds in estimates.items():
        gpu = has_gpu[instance_type]
        for estimate in kinds:
            b = estimate.breakdown
            rows.append(
                [
                    instance_type,
                    b.kind,
                    b.label,
                    b.measured_at,
                    _cell(b.weights),
                    _cell(b.activations),
                    _cell(b.overhead_gpu, gpu),
                    _cell(b.overhead_host),
                    _cell(b.shm),
                    _cell(b.total_gpu, gpu),
                    _cell(b.total_host),
                    f"{estimate.fit.targets_per_instance} ({estimate.customers_per_instance})",
                    estimate.fit.bound_by,
                ]
            )
    header = ["instance type", "kind", "largest TargetModel", "measured at", "weights"]
    header += ["activations", "overhead GPU", "overhead host", "/dev/shm", "total GPU"]
    header += ["total host"]
    header += ["per instance (customers)", "bound by"]
    reserves = [
        f"  {name}: "
        + (f"{_cell(kinds[0].reserve.gpu)} MiB GPU, " if has_gpu[name] else "")
        + f"{_cell(kinds[0].reserve.host)} MiB host"
        for name, kinds in estimates.items()
        if kinds
    ]
    return [
        "Production estimate per TargetModel, MiB: a kind is sized by its largest TargetModel, "
        f"at most {utilisation:.0%} of memory in use.",
        *text_table(header, rows, text_columns=4),
        "Reserved per instance before any model:",
        *reserves,
        *LEGEND,
        *gpu_check_lines(gpu_check),
    ]


def gpu_check_lines(gpu_check: GpuCheck | None) -> list[str]:
    if gpu_check is None:
        return []
    kinds = ", ".join(
        f"{kind} {found.gpu_mib_per_model:,.1f} MiB ({found.dtype})"
        for kind, found in gpu_check.kinds.items()
    )
    return [
        f"  * GPU memory per model measured on {gpu_check.device} (torch {gpu_check.torch}): "
        f"{kinds};",
        "    it replaces the weights and activations of the GPU members in total GPU",
    ]


def modeled_constants() -> dict[str, dict[str, Any]]:
    """The modeled figures, named, so a plan document says what it assumed."""
    return {
        "cuda_context_gpu_mib": {
            "mib": runtime_overhead.CUDA_CONTEXT_GPU_MIB,
            "per": "process using CUDA: tritonserver once per instance, each GPU Python stub",
        },
        "cuda_process_host_mib": {
            "mib": runtime_overhead.CUDA_PROCESS_HOST_MIB,
            "per": "process using CUDA and torch; derived from 4 x 292 MB autocomplete models "
            "per ml.g4dn.xlarge and 10 per ml.g4dn.2xlarge",
        },
        "os_and_agents_host_mib": {
            "mib": runtime_overhead.OS_AND_AGENTS_HOST_MIB,
            "per": "instance (OS and SageMaker's agents); derived with the figure above",
        },
        "python_stub_shm_mib": {
            "mib": runtime_overhead.PYTHON_STUB_SHM_MIB,
            "per": "Python stub process: its /dev/shm region, counted as host memory "
            "(triton.python_shm_default_bytes, passed to the endpoints as "
            "SAGEMAKER_TRITON_SHM_DEFAULT_BYTE_SIZE)",
        },
        "python_stub_host_mib": {
            "mib": runtime_overhead.PYTHON_STUB_HOST_MIB,
            "per": "CPU Python stub, used only when the local run did not measure it",
        },
        "tritonserver_host_mib": {
            "mib": runtime_overhead.TRITONSERVER_HOST_MIB,
            "per": "CPU instance: tritonserver with its libtorch and Python backends loaded",
        },
    }


def breakdown_document(
    measurements: list[TargetModelMeasurement],
    estimates: dict[str, list[KindEstimate]],
    max_batch: int | None,
    gpu_check: GpuCheck | None = None,
) -> dict[str, Any]:
    return {
        "activation_method": "torch dispatch mode counting live op outputs, on CPU, at the "
        "export's dtypes",
        "max_batch_override": max_batch,
        "gpu_measured": None if gpu_check is None else gpu_check.model_dump(by_alias=True),
        "modeled": modeled_constants(),
        "target_models": [measurement.to_dict() for measurement in measurements],
        "breakdown": [
            {**estimate.to_dict(), "instance_type": name}
            for name, kinds in estimates.items()
            for estimate in kinds
        ],
    }
