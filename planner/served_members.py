"""The Triton models inside one unpacked TargetModel, as their `config.pbtxt` files say.

A TargetModel is an ensemble of members (tokenizer step, TorchScript model, post-step) or one
Python-backend model. What a member costs on an instance depends on its backend, how many
instances of it Triton runs and where they run: a member the kind's layout pins to the CPU
(`instance_kind: KIND_CPU` in `triton_models/<kind>/layout.yaml`) stays there on GPU endpoints
too; every other member runs on the GPU when the instance type has one.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path

import yaml
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2

from mme_factory.errors import MmeFactoryError
from mme_factory.model_kinds import describe

LIBTORCH = "pytorch_libtorch"
PYTHON = "python"
CPU, GPU = "CPU", "GPU"


class ServedModelError(MmeFactoryError):
    """An unpacked TargetModel's configs cannot be read."""


@dataclass(frozen=True)
class ServedMember:
    name: str  # the Triton model name
    member: str  # the layout's name for it: tokenizer, encoder, generator, ...
    backend: str  # pytorch_libtorch, python or ensemble
    directory: Path  # the model's version directory, `<name>/1`
    config: model_config_pb2.ModelConfig
    pinned_to_cpu: bool

    @property
    def instance_count(self) -> int:
        return sum(group.count or 1 for group in self.config.instance_group) or 1

    @property
    def max_batch_size(self) -> int:
        return self.config.max_batch_size

    def parameter(self, name: str) -> str | None:
        found = self.config.parameters.get(name)
        return found.string_value if found is not None else None

    def placement(self, instance_has_gpu: bool) -> str:
        """Where this member's instances run on an instance type with or without a GPU."""
        packaged_gpu = any(
            group.kind == model_config_pb2.ModelInstanceGroup.KIND_GPU
            for group in self.config.instance_group
        )
        if not instance_has_gpu or (self.pinned_to_cpu and not packaged_gpu):
            return CPU
        return GPU


@cache
def _pinned_members(kind: str) -> frozenset[str]:
    layout = resources.files("triton_models").joinpath(describe(kind).layout, "layout.yaml")
    models = (yaml.safe_load(layout.read_text(encoding="utf-8")) or {}).get("models") or {}
    return frozenset(
        member for member, spec in models.items() if spec.get("instance_kind") == "KIND_CPU"
    )


def read_members(kind: str, repository: Path) -> list[ServedMember]:
    """Every model of the unpacked repository, in name order; ensembles included."""
    pinned = _pinned_members(kind)
    members = []
    for config_path in sorted(repository.glob("*/config.pbtxt")):
        try:
            config = text_format.Parse(
                config_path.read_text(encoding="utf-8"), model_config_pb2.ModelConfig()
            )
        except (OSError, text_format.ParseError) as error:
            raise ServedModelError(f"cannot read {config_path}: {error}") from None
        name = config.name or config_path.parent.name
        member = name.rsplit("--", 1)[-1]
        members.append(
            ServedMember(
                name=name,
                member=member,
                backend=config.platform or config.backend,
                directory=config_path.parent / "1",
                config=config,
                pinned_to_cpu=member in pinned,
            )
        )
    return members


def shared_parameter(members: list[ServedMember], name: str) -> str | None:
    """A parameter one member of the TargetModel carries for all (the tokenizer step's)."""
    for member in members:
        value = member.parameter(name)
        if value:
            return value
    return None


def max_length(members: list[ServedMember]) -> int:
    """The longest input the export accepts, in tokens (its `max_length` parameter)."""
    value = shared_parameter(members, "max_length")
    if value:
        return int(value)
    names = ", ".join(member.name for member in members)
    raise ServedModelError(f"no member of {names} has a max_length parameter")


def longest_prompt(members: list[ServedMember], new_tokens: int | None) -> int:
    """The widest token ids a request reaches the model with: `max_length`, less what a
    generation of `new_tokens` leaves of the model's positions, padded to `pad_to_multiple`
    (the parameters of the tokenizer step that builds the prompts)."""
    length = max_length(members)
    positions = shared_parameter(members, "max_position_embeddings")
    if positions and new_tokens is not None:
        length = min(length, int(positions) - new_tokens)
    multiple = int(shared_parameter(members, "pad_to_multiple") or 1)
    return max(1, -(-length // multiple) * multiple)


def default_max_new_tokens(members: list[ServedMember]) -> int | None:
    """New tokens a generation request makes when it asks for no number."""
    value = shared_parameter(members, "default_max_new_tokens")
    return int(value) if value else None
