"""Peak bytes of the tensors a forward pass creates, counted op by op as they live and die.

A `TorchDispatchMode` sees every aten op, including those a TorchScript module runs from its
graph, and each op's outputs. The tracker counts an output's storage once (views and in-place
results share it), holds a weak reference to each tensor it saw, and subtracts the storage when
the last of them is freed, so `peak_bytes` is the most memory the pass's own tensors held at
once. The inputs and the weights are excluded: they are counted elsewhere. Scratch memory a
kernel allocates and frees inside one op is not a tensor and is not seen.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten


class LiveTensorBytes(TorchDispatchMode):
    """Use as a context manager around a forward pass; then read `peak_bytes`."""

    def __init__(self, exclude: Iterable[torch.Tensor] = ()) -> None:
        super().__init__()
        self._excluded = {tensor.untyped_storage().data_ptr() for tensor in exclude}
        self._holders: dict[int, int] = {}  # storage address -> live tensors seen using it
        self._sizes: dict[int, int] = {}
        self.live_bytes = 0
        self.peak_bytes = 0

    def __torch_dispatch__(
        self,
        func: Any,
        types: Any,
        args: tuple[Any, ...] = (),
        kwargs: dict[str, Any] | None = None,
    ) -> Any:
        result = func(*args, **(kwargs or {}))
        for value in tree_flatten(result)[0]:
            if isinstance(value, torch.Tensor):
                self._track(value)
        return result

    def _track(self, tensor: torch.Tensor) -> None:
        storage = tensor.untyped_storage()
        address, size = storage.data_ptr(), storage.nbytes()
        if size == 0 or address in self._excluded:
            return
        if address not in self._holders:
            self._holders[address] = 0
            self._sizes[address] = size
            self.live_bytes += size
            self.peak_bytes = max(self.peak_bytes, self.live_bytes)
        self._holders[address] += 1
        weakref.finalize(tensor, self._release, address)

    def _release(self, address: int) -> None:
        self._holders[address] -= 1
        if self._holders[address] == 0:
            del self._holders[address]
            self.live_bytes -= self._sizes.pop(address)


def module_tensors(module: torch.nn.Module | torch.jit.ScriptModule) -> list[torch.Tensor]:
    """A module's parameters and buffers (what stays loaded between requests)."""
    return [*module.parameters(), *module.buffers()]


def storage_bytes(tensors: Iterable[torch.Tensor]) -> int:
    """Bytes of the distinct storages behind `tensors` (tied or shared weights count once)."""
    sizes = {t.untyped_storage().data_ptr(): t.untyped_storage().nbytes() for t in tensors}
    return sum(sizes.values())
