"""The capacity arithmetic that sizing and warm-up share: models per instance, instances needed."""

from __future__ import annotations

import math

# Memory a loaded model holds per byte of its tarball, before any model of the endpoint was
# measured. Float32 weights barely compress, so a tarball is about its weights; a loaded model
# holds them once plus its share of the interpreter, torch and tokenizer pages, one to two times
# the weights in the loads measured on the local service. Tiny test models hold far more than 3
# times their tarball; one measured model on the endpoint replaces this with its own ratio.
FOOTPRINT_PER_TARBALL_BYTE = 3.0


def models_per_instance(usable: float, footprint: float) -> int:
    """How many models of `footprint` fit in `usable` memory (same unit); 0 when none does."""
    if footprint <= 0:
        raise ValueError(f"a footprint must be positive, got {footprint}")
    return max(0, math.floor(usable / footprint))


def instances_needed(models: int, per_instance: int, replicas: int = 1) -> int:
    """Instances that hold `models` models, each loaded on `replicas` of them."""
    if per_instance < 1:
        raise ValueError("per_instance must be at least 1")
    return max(replicas, math.ceil(models * replicas / per_instance))
