"""The dtype a kind's model is exported in, and the parity tolerance that dtype is held to.

"auto" is float16 when the kind's endpoint instance type has an NVIDIA GPU, where half
precision halves the weights' GPU memory and runs on tensor cores, and float32 otherwise.
"""

from __future__ import annotations

import torch

from mme_factory.gpu_instances import has_nvidia_gpu
from mme_factory.settings import Settings

DTYPES = {"float32": torch.float32, "float16": torch.float16}


def export_dtype(settings: Settings, kind: str) -> torch.dtype:
    chosen = getattr(settings.training, kind).export_dtype
    if chosen == "auto":
        instance_type = settings.sagemaker.instance_types.get(kind, "")
        chosen = "float16" if has_nvidia_gpu(instance_type) else "float32"
    return DTYPES[chosen]


def parity_tolerance(settings: Settings, dtype: torch.dtype) -> float:
    training = settings.training
    if dtype == torch.float16:
        return training.export_parity_tolerance_fp16
    return training.export_parity_tolerance


def dtype_name(dtype: torch.dtype) -> str:
    """How export.json records a dtype: "float16" for torch.float16."""
    return str(dtype).removeprefix("torch.")
