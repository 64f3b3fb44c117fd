"""Typed descriptions of Triton models, rendered to `config.pbtxt` and checked by Triton's protobuf.

The rendered text is parsed back with `tritonclient.grpc.model_config_pb2` in the same call, so
a typo fails at packaging, with the parse error, not at load time on an endpoint.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2

from mme_factory.errors import MmeFactoryError

INSTANCE_KINDS = ("KIND_CPU", "KIND_GPU")


class PackagingError(MmeFactoryError):
    """An export cannot be packaged: a missing file, a bad layout or an invalid config.pbtxt."""


@dataclass(frozen=True)
class TensorSpec:
    name: str
    data_type: str
    dims: tuple[int, ...]
    optional: bool = False


@dataclass(frozen=True)
class EnsembleStep:
    model_name: str
    input_map: dict[str, str]  # member input -> ensemble tensor
    output_map: dict[str, str]  # member output -> ensemble tensor


@dataclass(frozen=True)
class TritonModelSpec:
    """Everything one `config.pbtxt` says."""

    name: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    max_batch_size: int
    backend: str | None = None
    platform: str | None = None
    instance_kind: str = "KIND_CPU"
    instance_count: int = 1
    max_queue_delay_microseconds: int | None = None  # None: no dynamic batching
    parameters: dict[str, str] = field(default_factory=dict)
    steps: tuple[EnsembleStep, ...] = ()
    extra: str = ""  # verbatim pbtxt appended (e.g. model_warmup), still parsed

    @property
    def is_ensemble(self) -> bool:
        return self.platform == "ensemble"


def render_config(spec: TritonModelSpec) -> str:
    """The `config.pbtxt` text for `spec`, already validated by Triton's model-config protobuf."""
    if (spec.backend is None) == (spec.platform is None):
        raise PackagingError(f"model {spec.name}: give exactly one of backend or platform")
    lines = [f"name: {_quote(spec.name)}"]
    if spec.backend is not None:
        lines.append(f"backend: {_quote(spec.backend)}")
    else:
        lines.append(f"platform: {_quote(str(spec.platform))}")
    lines.append(f"max_batch_size: {spec.max_batch_size}")
    lines += _tensors("input", spec.inputs)
    lines += _tensors("output", spec.outputs)
    if spec.is_ensemble:
        lines += _ensemble(spec.steps)
    else:
        if spec.instance_kind not in INSTANCE_KINDS:
            raise PackagingError(f"model {spec.name}: instance kind {spec.instance_kind!r}")
        lines.append(
            f"instance_group [ {{ kind: {spec.instance_kind} count: {spec.instance_count} }} ]"
        )
        if spec.max_queue_delay_microseconds is not None and spec.max_batch_size > 0:
            delay = spec.max_queue_delay_microseconds
            lines.append(f"dynamic_batching {{ max_queue_delay_microseconds: {delay} }}")
    for key, value in sorted(spec.parameters.items()):
        lines.append(
            f"parameters {{ key: {_quote(key)} value: {{ string_value: {_quote(value)} }} }}"
        )
    if spec.extra.strip():
        lines.append(spec.extra.strip())
    text = "\n".join(lines) + "\n"
    parse_config(text, spec.name)
    return text


def parse_config(text: str, where: str) -> model_config_pb2.ModelConfig:
    """Parse `config.pbtxt` text with Triton's own protobuf; fail with its line and column."""
    try:
        return text_format.Parse(text, model_config_pb2.ModelConfig())
    except text_format.ParseError as error:
        raise PackagingError(f"invalid config.pbtxt for {where}: {error}") from None


def _quote(value: str) -> str:
    # JSON string escaping is valid protobuf text-format escaping for these characters.
    return json.dumps(value, ensure_ascii=False)


def _tensors(section: str, tensors: tuple[TensorSpec, ...]) -> list[str]:
    lines = [f"{section} ["]
    for index, tensor in enumerate(tensors):
        dims = ", ".join(str(dim) for dim in tensor.dims)
        optional = " optional: true" if tensor.optional else ""
        comma = "," if index < len(tensors) - 1 else ""
        lines.append(
            f"  {{ name: {_quote(tensor.name)} data_type: {tensor.data_type} "
            f"dims: [ {dims} ]{optional} }}{comma}"
        )
    lines.append("]")
    return lines


def _ensemble(steps: tuple[EnsembleStep, ...]) -> list[str]:
    lines = ["ensemble_scheduling {", "  step ["]
    for index, step in enumerate(steps):
        lines.append(f"    {{ model_name: {_quote(step.model_name)} model_version: -1")
        for key, value in step.input_map.items():
            lines.append(f"      input_map {{ key: {_quote(key)} value: {_quote(value)} }}")
        for key, value in step.output_map.items():
            lines.append(f"      output_map {{ key: {_quote(key)} value: {_quote(value)} }}")
        lines.append("    }," if index < len(steps) - 1 else "    }")
    lines += ["  ]", "}"]
    return lines
