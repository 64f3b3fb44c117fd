"""Weights and peak activation memory of each member of a TargetModel, measured in-process on CPU.

Weights are the bytes of the parameters and buffers the served module holds: the TorchScript
`model.pt` a libtorch member loads, or the `LlamaDecoder` an autocomplete generator builds
from `config.json` and `weights.pt` with the `llama_decoder.py` shipped in the tarball.

Activations are the peak bytes of the tensors one execution creates (`LiveTensorBytes`) at the
largest request the model is configured for: a libtorch member runs at the config's
`max_batch_size` (or `--max-batch`) rows of `max_length` tokens, in inference mode as the
libtorch backend runs it; the autocomplete generator generates one prompt at a time, so it
runs one generation: the prompt pass at `max_length` tokens, then `default_max_new_tokens`
steps with the key/value cache growing. The tensor sizes are those a GPU holds in float32;
the GPU allocator rounds them up to its blocks.
"""

from __future__ import annotations

import importlib.util
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from tritonclient.grpc import model_config_pb2

from planner.activation_tracker import LiveTensorBytes, module_tensors, storage_bytes
from planner.footprint import TarballToMeasure
from planner.served_members import (
    GPU,
    LIBTORCH,
    PYTHON,
    ServedMember,
    ServedModelError,
    max_length,
    read_members,
)

DTYPES = {
    model_config_pb2.TYPE_INT64: torch.int64,
    model_config_pb2.TYPE_INT32: torch.int32,
    model_config_pb2.TYPE_FP32: torch.float32,
    model_config_pb2.TYPE_BOOL: torch.bool,
}


@dataclass(frozen=True)
class MeasuredMember:
    name: str
    member: str
    backend: str
    instance_count: int
    runs_on_gpu: bool  # on an instance type with a GPU
    weights_bytes: int = 0
    activation_bytes: int = 0
    measured_at: str = ""  # the request shape the activations were measured at


@dataclass(frozen=True)
class TargetModelMeasurement:
    kind: str
    label: str
    members: list[MeasuredMember]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def torchscript_figures(member: ServedMember, batch: int, length: int) -> tuple[int, int, str]:
    """(weights, activations, shape) of a libtorch member's `model.pt` at batch x length."""
    module = torch.jit.load(str(member.directory / "model.pt"), map_location="cpu").eval()
    inputs = []
    for spec in member.config.input:
        if spec.data_type not in DTYPES:
            raise ServedModelError(f"{member.name}: input {spec.name} has an unsupported type")
        shape = [batch, *(length if dim == -1 else dim for dim in spec.dims)]
        inputs.append(torch.ones(shape, dtype=DTYPES[spec.data_type]))
    weights = module_tensors(module)
    inference = member.parameter("INFERENCE_MODE") == "true"
    optimized = member.parameter("DISABLE_OPTIMIZED_EXECUTION") != "true"
    with (
        torch.inference_mode() if inference else torch.no_grad(),
        torch.jit.optimized_execution(optimized),
        LiveTensorBytes(exclude=[*inputs, *weights]) as tracker,
    ):
        module(*inputs)
    return storage_bytes(weights), tracker.peak_bytes, f"{batch} x {length} tokens"


def _load_decoder_module(directory: Path) -> Any:
    """The tarball's own `llama_decoder.py`: the code the generator serves with."""
    name = f"_served_llama_decoder_{abs(hash(directory))}"
    spec = importlib.util.spec_from_file_location(name, directory / "llama_decoder.py")
    if spec is None or spec.loader is None:
        raise ServedModelError(f"cannot import {directory / 'llama_decoder.py'}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the file runs
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[name]
    return module


def decoder_figures(member: ServedMember, length: int) -> tuple[int, int, str]:
    """(weights, activations, shape) of one greedy generation at the longest prompt."""
    directory = member.directory
    decoder_module = _load_decoder_module(directory)
    decoder = decoder_module.LlamaDecoder.from_files(
        directory / "config.json", directory / "weights.pt"
    )
    new_tokens = int(member.parameter("default_max_new_tokens") or 0)
    prompt_length = max(1, min(length, decoder.shape.max_position_embeddings - new_tokens))
    prompt = [decoder.shape.bos_token_id or 0] * prompt_length
    weights = module_tensors(decoder)
    with LiveTensorBytes(exclude=weights) as tracker:
        decoder.generate(prompt, max_new_tokens=new_tokens)
    shape = f"1 x {prompt_length} tokens + {new_tokens} new"
    return storage_bytes(weights), tracker.peak_bytes, shape


def measure_member(member: ServedMember, batch: int, length: int) -> MeasuredMember:
    figures = (0, 0, "")
    if member.backend == LIBTORCH:
        figures = torchscript_figures(member, batch, length)
    elif member.backend == PYTHON and (member.directory / "weights.pt").is_file():
        figures = decoder_figures(member, length)
    weights, activations, shape = figures
    return MeasuredMember(
        name=member.name,
        member=member.member,
        backend=member.backend,
        instance_count=member.instance_count,
        runs_on_gpu=member.placement(instance_has_gpu=True) == GPU,
        weights_bytes=weights,
        activation_bytes=activations,
        measured_at=shape,
    )


def measure_repository(
    kind: str, label: str, repository: Path, max_batch: int | None = None
) -> TargetModelMeasurement:
    """Every served member of an unpacked TargetModel (ensembles hold nothing and are left out)."""
    members = read_members(kind, repository)
    length = max_length(members)
    measured = [
        measure_member(member, max_batch or member.max_batch_size or 1, length)
        for member in members
        if member.backend in (LIBTORCH, PYTHON)
    ]
    return TargetModelMeasurement(kind, label, measured)


def measure_in_process(
    models: list[TarballToMeasure],
    repositories: list[Path],
    max_batch: int | None = None,
    progress: Any = print,
) -> list[TargetModelMeasurement]:
    """Weights and activations of every unpacked tarball, one after the other in this process."""
    measured = []
    for index, (model, repository) in enumerate(zip(models, repositories, strict=True)):
        progress(f"weights and activations of {model.label} ({index + 1}/{len(models)}) ...")
        measured.append(measure_repository(model.kind, model.label, repository, max_batch))
    return measured
