"""Refuse TorchScript whose graph names a device: it would run on the CPU, or fail, on a GPU.

On a GPU endpoint the libtorch backend loads `model.pt` onto `cuda:0` and passes inputs there.
A device written into the graph (`prim::Constant[value="cpu"]`, typically frozen in by
`torch.jit.trace` of code that calls `.to(mask.device)` or `torch.arange(n, device=...)`) still
says "cpu" there: the tensor it makes lands in host memory, and the next operation either fails
for mixing devices or copies through the host. Every method of the module and its submodules
is walked, nested blocks included.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch

from tasks.packaging.libtorch_tensors import load_torchscript
from tasks.packaging.triton_config import PackagingError

CONSTANT = "prim::Constant"
# Moves to a fixed device that take no device argument.
FIXED_DEVICE_CALLS = {"aten::cpu": "cpu", "aten::cuda": "cuda"}
LISTED = 5  # pins named in an error message; the rest are counted
_SOURCE = re.compile(r"# (?P<file>[^\s#]+):(?P<line>\d+):\d+\s*$")


@dataclass(frozen=True)
class DevicePin:
    """One node of a graph that fixes a device."""

    node: str  # the node's kind: "aten::arange", or "prim::Constant" for a constant used elsewhere
    device: str
    method: str  # "forward", or "<submodule>.<method>"
    source: str | None  # "file:line" where the graph records it

    def describe(self) -> str:
        call = (
            f'{CONSTANT}[value="{self.device}"]'
            if self.node == CONSTANT
            else f"{self.node}(device={self.device!r})"
        )
        where = f" at {self.source}" if self.source else ""
        return f"{call} in {self.method}{where}"


def device_pins(module: torch.jit.ScriptModule) -> list[DevicePin]:
    """Every call given a constant device, and every device constant no such call takes."""
    pins: dict[tuple[str, str, str], DevicePin] = {}
    for path, submodule in module.named_modules():
        for name in submodule._c._method_names():
            method = f"{path}.{name}" if path else name
            graph = submodule._c._get_method(name).inlined_graph
            for pin in _graph_pins(graph, method):
                # A submodule's forward is inlined into its parent's too: name each node once.
                pins.setdefault((pin.node, pin.device, pin.source or method), pin)
    return list(pins.values())


def check_device_free(model: str, file: str, model_pt: Path | bytes) -> None:
    """Raise a PackagingError naming the nodes of `model_pt` that pin a device."""
    pins = device_pins(load_torchscript(model_pt))
    if not pins:
        return
    listed = "; ".join(pin.describe() for pin in pins[:LISTED])
    more = f"; and {len(pins) - LISTED} more" if len(pins) > LISTED else ""
    raise PackagingError(
        f"model {model}: {file} fixes a device in its graph ({listed}{more}). On a GPU endpoint "
        "its inputs are on cuda:0 and these nodes fail or copy through host memory. Export it "
        "with torch.jit.script rather than torch.jit.trace, and take devices from the inputs "
        "(torch.arange(n, device=input_ids.device), mask.to(hidden.dtype))"
    )


def _graph_pins(graph: torch.Graph, method: str) -> Iterator[DevicePin]:
    taken: set[int] = set()  # device constants some reported call takes
    constants: list[torch.Node] = []
    for node in _nodes(graph.nodes()):
        if node.kind() == CONSTANT and _constant_device(node.output()) is not None:
            constants.append(node)
            continue
        argument = _device_argument(node)
        if argument is not None:
            device = _constant_device(argument)
            if device is not None:
                taken.add(argument.unique())
                yield DevicePin(node.kind(), device, method, _source(node))
        elif node.kind() in FIXED_DEVICE_CALLS:
            yield DevicePin(node.kind(), FIXED_DEVICE_CALLS[node.kind()], method, _source(node))
    for node in constants:
        if node.output().unique() not in taken:
            device = str(_constant_device(node.output()))
            yield DevicePin(CONSTANT, device, method, _source(node))


def _nodes(nodes: Iterator[torch.Node]) -> Iterator[torch.Node]:
    for node in nodes:
        yield node
        for block in node.blocks():
            yield from _nodes(block.nodes())


def _device_argument(node: torch.Node) -> torch.Value | None:
    """The value a node passes as its schema's `device` argument, if it has one."""
    if not node.kind().startswith("aten::"):
        return None
    try:
        schema = torch._C.parse_schema(node.schema())
    except RuntimeError:  # "(no schema)"
        return None
    for index, argument in enumerate(schema.arguments):
        if argument.name == "device" and index < node.inputsSize():
            return node.inputsAt(index)
    return None


def _constant_device(value: torch.Value) -> str | None:
    """The device a value always holds ("cpu", "cuda:0"), or None when it is not a constant."""
    producer = value.node()
    if producer.kind() == "aten::device":  # torch.device(<string>)
        name = producer.inputsAt(0)
        if name.node().kind() == CONSTANT and name.type().kind() == "StringType":
            return str(name.toIValue())
        return None
    if producer.kind() == CONSTANT and value.type().kind() == "DeviceObjType":
        return str(value.toIValue())
    return None


def _source(node: torch.Node) -> str | None:
    found = _SOURCE.search(str(node).splitlines()[0])
    if found is None or not found["file"]:
        return None
    return f"{found['file']}:{found['line']}"
