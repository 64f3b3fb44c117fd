"""Weights and peak activation memory of each member of a TargetModel, measured in-process on CPU.

Weights are the bytes of the parameters and buffers of a libtorch member's TorchScript
`model.pt`, at the dtype it was exported in (float16 weights count two bytes each).

Activations are the peak bytes of the tensors one execution creates (`LiveTensorBytes`) at the
largest request the model is configured for: the config's `max_batch_size` (or `--max-batch`)
rows of the export's `max_length` tokens (for a generator, as many as its positions leave
beside its new tokens, padded as its tokenizer step pads), in inference mode as the libtorch
backend runs it.
Inputs are built by name: token ids (a small id repeated, one per row), attention masks of
ones, and a generator's `max_new_tokens` at the export's `default_max_new_tokens`, so a
generator's measured run is the whole generation, prompt pass and new tokens, with the
key/value cache its graph keeps at max batch x (prompt + new tokens). A generation that ends
early (every row at its end-of-text token) is retried on other prompts, and its shape says how
many new tokens the longest run made. The tensors are those the GPU holds, at the same dtypes;
the GPU allocator rounds them up to its blocks.

Python-backend members (tokenizer, detokenizer, post-steps) hold no weights here; their stub
processes' memory is the runtime overhead (`runtime_overhead`).
"""

from __future__ import annotations

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
    default_max_new_tokens,
    longest_prompt,
    read_members,
)

DTYPES = {
    model_config_pb2.TYPE_INT64: torch.int64,
    model_config_pb2.TYPE_INT32: torch.int32,
    model_config_pb2.TYPE_FP32: torch.float32,
    model_config_pb2.TYPE_FP16: torch.float16,
    model_config_pb2.TYPE_BOOL: torch.bool,
}
IDS_INPUT = "input_ids"
NEW_TOKENS_INPUT = "max_new_tokens"
NO_TOKEN = -1  # what a generator's token_ids hold after a row has ended
PROMPT_TOKEN_IDS = 31
GENERATION_TRIES = 4


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
    dtype: str = ""  # of most of the weights' bytes: float16, float32


@dataclass(frozen=True)
class TargetModelMeasurement:
    kind: str
    label: str
    members: list[MeasuredMember]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Request:
    """The largest request a member is configured for."""

    batch: int
    length: int  # prompt tokens
    new_tokens: int | None = None  # a generator's default_max_new_tokens


def prompt_ids(shape: list[int], attempt: int, dtype: torch.dtype) -> torch.Tensor:
    """Row r repeats token 1 + (r + attempt x rows) mod 31: ids every vocabulary has, and rows
    that differ, so a generation goes on while any row has not ended."""
    rows = torch.arange(shape[0]) + attempt * shape[0]
    ids = 1 + rows % PROMPT_TOKEN_IDS
    return ids.reshape(-1, *[1] * (len(shape) - 1)).expand(shape).to(dtype).contiguous()


def request_inputs(member: ServedMember, request: Request, attempt: int = 0) -> list[torch.Tensor]:
    """One tensor per configured input, in the config's order, each filled by its name."""
    inputs = []
    for spec in member.config.input:
        if spec.data_type not in DTYPES:
            raise ServedModelError(f"{member.name}: input {spec.name} has an unsupported type")
        dtype = DTYPES[spec.data_type]
        shape = [request.batch, *(request.length if dim == -1 else dim for dim in spec.dims)]
        if spec.name == IDS_INPUT:
            inputs.append(prompt_ids(shape, attempt, dtype))
            continue
        value = 1
        if spec.name == NEW_TOKENS_INPUT:
            if request.new_tokens is None:
                raise ServedModelError(
                    f"{member.name} takes {NEW_TOKENS_INPUT}, but no member of its TargetModel "
                    "has a default_max_new_tokens parameter"
                )
            value = request.new_tokens
        inputs.append(torch.full(shape, value, dtype=dtype))
    return inputs


def generated_tokens(outputs: Any) -> int:
    """New tokens a generator produced: columns of its token ids where some row has one."""
    tokens = outputs[0] if isinstance(outputs, tuple | list) else outputs
    if not isinstance(tokens, torch.Tensor) or tokens.dim() != 2:
        return 0
    return int((tokens != NO_TOKEN).any(dim=0).sum())


def weights_dtype(tensors: list[torch.Tensor]) -> str:
    """The dtype of most of the weights' bytes, as torch names it without `torch.`."""
    by_dtype: dict[str, int] = {}
    for tensor in tensors:
        name = str(tensor.dtype).removeprefix("torch.")
        by_dtype[name] = by_dtype.get(name, 0) + tensor.numel() * tensor.element_size()
    return max(by_dtype, key=lambda name: by_dtype[name]) if by_dtype else ""


def request_shape(request: Request, generated: int) -> str:
    shape = f"{request.batch} x {request.length} tokens"
    if request.new_tokens is None:
        return shape
    if generated < request.new_tokens:
        return f"{shape} + {generated} of {request.new_tokens} new (ended early)"
    return f"{shape} + {request.new_tokens} new"


def torchscript_figures(member: ServedMember, request: Request) -> tuple[int, int, str, str]:
    """(weights, activations, shape, dtype) of a libtorch member's `model.pt` at `request`.

    A generator whose every row ends before its new tokens is run again on other prompts, up
    to `GENERATION_TRIES` times; the longest generation's peak counts.
    """
    module = torch.jit.load(str(member.directory / "model.pt"), map_location="cpu").eval()
    takes_new_tokens = any(spec.name == NEW_TOKENS_INPUT for spec in member.config.input)
    if not takes_new_tokens:
        request = Request(request.batch, request.length)
    weights = module_tensors(module)
    inference = member.parameter("INFERENCE_MODE") == "true"
    optimized = member.parameter("DISABLE_OPTIMIZED_EXECUTION") != "true"
    generated, peak = -1, 0
    for attempt in range(GENERATION_TRIES if takes_new_tokens else 1):
        inputs = request_inputs(member, request, attempt)
        with (
            torch.inference_mode() if inference else torch.no_grad(),
            torch.jit.optimized_execution(optimized),
            LiveTensorBytes(exclude=[*inputs, *weights]) as tracker,
        ):
            outputs = module(*inputs)
        made = generated_tokens(outputs) if takes_new_tokens else 0
        if made > generated:
            generated, peak = made, tracker.peak_bytes
        if request.new_tokens is None or generated >= request.new_tokens:
            break
    return storage_bytes(weights), peak, request_shape(request, generated), weights_dtype(weights)


def measure_member(member: ServedMember, request: Request) -> MeasuredMember:
    figures = (0, 0, "", "")
    if member.backend == LIBTORCH:
        figures = torchscript_figures(member, request)
    weights, activations, shape, dtype = figures
    return MeasuredMember(
        name=member.name,
        member=member.member,
        backend=member.backend,
        instance_count=member.instance_count,
        runs_on_gpu=member.placement(instance_has_gpu=True) == GPU,
        weights_bytes=weights,
        activation_bytes=activations,
        measured_at=shape,
        dtype=dtype,
    )


def measure_repository(
    kind: str, label: str, repository: Path, max_batch: int | None = None
) -> TargetModelMeasurement:
    """Every served member of an unpacked TargetModel (ensembles hold nothing and are left out)."""
    members = read_members(kind, repository)
    new_tokens = default_max_new_tokens(members)
    length = longest_prompt(members, new_tokens)
    measured = [
        measure_member(member, Request(max_batch or member.max_batch_size or 1, length, new_tokens))
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
