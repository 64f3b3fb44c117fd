"""Which SageMaker instance types carry an NVIDIA GPU, from the instance family in their name.

`planner/instance_types.yaml` knows the GPU of the types it lists, but the core cannot import
the planner (the import layers put it above), and a setting may name any type. The families
here are SageMaker's NVIDIA ones; Inferentia and Trainium types (inf*, trn*) have no CUDA.
"""

from __future__ import annotations

NVIDIA_GPU_FAMILIES = frozenset({"g4dn", "g5", "g6", "g6e", "p3", "p4d", "p4de", "p5"})


def has_nvidia_gpu(instance_type: str) -> bool:
    """True for `ml.g4dn.xlarge` and the like; False for `ml.c5.2xlarge` or an unknown family."""
    prefix, _, rest = instance_type.partition(".")
    family = rest.partition(".")[0]
    return prefix == "ml" and family in NVIDIA_GPU_FAMILIES
