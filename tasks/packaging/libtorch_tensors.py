"""Refuse `pytorch_libtorch` tensor names that the real libtorch backend would reject or misbind.

The TorchScript file is loaded and its `forward` schema read; the config's tensors are bound
with the backend's own rules (`tensor_binding`). Stricter than the backend where it would guess:
inputs that fall back to config order, and outputs that are not `<name>__<index>`, bind by
position silently on the endpoint, so they are refused here with the names to use.
"""

from __future__ import annotations

import io
from pathlib import Path

import torch

from mme_factory.triton.backends.pytorch.tensor_binding import (
    STRICT_CONFIG_ORDERING,
    BindingError,
    bind_inputs,
    bind_outputs,
)
from tasks.packaging.triton_config import PackagingError, TritonModelSpec


def load_torchscript(model_pt: Path | bytes) -> torch.jit.ScriptModule:
    source = str(model_pt) if isinstance(model_pt, Path) else io.BytesIO(model_pt)
    try:
        return torch.jit.load(source, map_location="cpu")
    except (RuntimeError, ValueError) as error:
        raise PackagingError(f"cannot read TorchScript {model_pt}: {error}") from None


def forward_signature(model_pt: Path | bytes) -> tuple[list[str], int]:
    """`forward`'s argument names (after self) and how many tensors it returns."""
    schema = load_torchscript(model_pt).forward.schema
    arguments = [argument.name for argument in schema.arguments[1:]]
    returned = schema.returns[0].type if len(schema.returns) == 1 else None
    count = len(returned.elements()) if isinstance(returned, torch.TupleType) else 1
    return arguments, count


def check_libtorch_tensors(spec: TritonModelSpec, model_pt: Path | bytes) -> None:
    arguments, returned = forward_signature(model_pt)
    inputs = [tensor.name for tensor in spec.inputs]
    outputs = [tensor.name for tensor in spec.outputs]
    try:
        bound = bind_inputs(spec.name, inputs, arguments)
    except BindingError as error:
        raise PackagingError(f"{error} (forward({', '.join(arguments)}))") from None
    if bound.convention == STRICT_CONFIG_ORDERING:
        raise PackagingError(
            f"model {spec.name}: inputs {inputs} are neither forward's arguments "
            f"({', '.join(arguments)}) nor all <name>__<index>; the libtorch backend would bind "
            "them by config order. Name them after forward's arguments"
        )
    positions = bind_outputs(outputs)
    if positions.convention == STRICT_CONFIG_ORDERING:
        raise PackagingError(
            f"model {spec.name}: outputs {outputs} must be named <name>__<index> (e.g. "
            f"embedding__0), the libtorch backend's convention for what forward returns"
        )
    too_far = [name for name, index in positions.positions.items() if index >= returned]
    if too_far or len(set(positions.positions.values())) != len(outputs):
        raise PackagingError(
            f"model {spec.name}: outputs {outputs} must name distinct elements of the "
            f"{returned} tensor(s) forward returns"
        )
