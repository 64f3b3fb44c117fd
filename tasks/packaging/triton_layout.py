"""Each model kind's Triton layout, read from `triton_models/<kind>/layout.yaml` (layouts are data).

A layout names the Triton models of one TargetModel, their tensors, batching, ensemble steps
and the files each one ships (`export:NAME` from the exported model, `code:NAME` from the
kind's versioned Python-backend code, `code/<version>/`, and `shared:NAME` from the steps
several kinds use, `shared/code/<version>/`).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

import triton_models
from tasks.packaging.triton_config import EnsembleStep, PackagingError, TensorSpec, TritonModelSpec

TRITON_MODELS = Path(triton_models.__file__).resolve().parent
LAYOUT_FILE = "layout.yaml"
SHARED_DIR = "shared"
_VERSION = re.compile(r"v([0-9]+)")
_NAME_PART = re.compile(r"[^a-z0-9_.-]+")
_WHOLE = re.compile(r"\{(\w+)\}")


@dataclass(frozen=True)
class Batching:
    max_batch_size: int
    instance_kind: str
    instance_count: int
    max_queue_delay_microseconds: int


@dataclass(frozen=True)
class KindLayout:
    kind: str
    directory: Path
    entry: str
    models: dict[str, dict[str, Any]]
    defaults: dict[str, Any]

    @property
    def code_root(self) -> Path:
        """The kind's own versioned code, or the shared steps' for a kind that has none."""
        own = self.directory / "code"
        return own if own.is_dir() else self.directory.parent / SHARED_DIR / "code"

    def code_versions(self) -> list[str]:
        """The Python-backend code versions, oldest first (`v1`, `v2`, ...)."""
        found = [
            p.name for p in self.code_root.iterdir() if p.is_dir() and _VERSION.fullmatch(p.name)
        ]
        return sorted(found, key=lambda name: int(name[1:]))

    def resolve_code_version(self, requested: str | None) -> str:
        versions = self.code_versions()
        if requested is None:
            if not versions:
                raise PackagingError(f"{self.code_root} holds no code version (v1, ...)")
            return versions[-1]
        if requested not in versions:
            raise PackagingError(
                f"{self.kind}: code version {requested!r} does not exist; "
                f"choose from {', '.join(versions) or '(none)'}"
            )
        return requested


def read_layout(kind: str, root: Path = TRITON_MODELS) -> KindLayout:
    path = root / kind / LAYOUT_FILE
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PackagingError(f"no Triton layout for kind {kind!r}: {path} is missing") from None
    except yaml.YAMLError as error:
        raise PackagingError(f"cannot read {path}: {error}") from None
    try:
        models = dict(loaded["models"])
        entry = str(loaded["entry"])
    except (KeyError, TypeError):
        raise PackagingError(f"{path}: needs 'models' and 'entry'") from None
    if entry not in models:
        raise PackagingError(f"{path}: entry {entry!r} is not one of its models")
    return KindLayout(
        kind=kind,
        directory=path.parent,
        entry=entry,
        models=models,
        defaults=dict(loaded.get("defaults") or {}),
    )


def triton_model_name(customer: str, target: str, version: str, member: str) -> str:
    """A Triton model name unique per customer, kind (and role), version and member.

    Member names are global in one Triton server, so two customers, or two versions
    of one customer's model, never share one.
    """
    parts = [_NAME_PART.sub("-", part.lower()).strip("-") for part in (customer, target)]
    parts += [_NAME_PART.sub("-", part.lower()).strip("-") for part in (version, member)]
    if not all(parts):
        raise PackagingError(f"cannot name a Triton model from {customer!r}, {version!r}")
    return "--".join(parts)


def model_specs(
    layout: KindLayout,
    names: dict[str, str],
    values: dict[str, Any],
    batching: Batching,
    code_version: str,
) -> dict[str, TritonModelSpec]:
    """The typed description of every model in the layout, placeholders filled from `values`."""
    values = {**layout.defaults, **values}
    specs = {}
    for member, raw in layout.models.items():
        where = f"{layout.kind}/{LAYOUT_FILE} model {member!r}"
        parameters = {
            k: str(_fill(v, values, where)) for k, v in (raw.get("parameters") or {}).items()
        }
        if raw.get("backend") == "python":
            parameters["code_version"] = code_version
        is_ensemble = raw.get("platform") == "ensemble"
        specs[member] = TritonModelSpec(
            name=names[member],
            backend=raw.get("backend"),
            platform=raw.get("platform"),
            max_batch_size=batching.max_batch_size,
            inputs=_tensors(raw.get("inputs") or [], values, where),
            outputs=_tensors(raw.get("outputs") or [], values, where),
            instance_kind=raw.get("instance_kind", batching.instance_kind),
            instance_count=int(raw.get("instance_count", batching.instance_count)),
            max_queue_delay_microseconds=(
                batching.max_queue_delay_microseconds if raw.get("dynamic_batching") else None
            ),
            parameters=parameters,
            steps=_steps(raw.get("steps") or [], names, where) if is_ensemble else (),
            extra=str(raw.get("extra_config") or ""),
        )
    return specs


def _fill(value: Any, values: dict[str, Any], where: str) -> Any:
    """Fill `{field}` placeholders; a whole-value placeholder of a list or dict becomes JSON."""
    if not isinstance(value, str) or "{" not in value:
        return value
    whole = _WHOLE.fullmatch(value)
    if whole:
        if whole.group(1) not in values:
            raise PackagingError(f"{where}: export.json has no value for '{whole.group(1)}'")
        found = values[whole.group(1)]
        return json.dumps(found) if isinstance(found, list | dict) else found
    try:
        return value.format(**values)
    except (KeyError, IndexError) as error:
        raise PackagingError(f"{where}: export.json has no value for {error}") from None


def _tensors(
    raw: list[dict[str, Any]], values: dict[str, Any], where: str
) -> tuple[TensorSpec, ...]:
    tensors = []
    for item in raw:
        try:
            dims = tuple(int(_fill(dim, values, where)) for dim in item["dims"])
            tensors.append(
                TensorSpec(
                    name=str(item["name"]),
                    data_type=str(item["data_type"]),
                    dims=dims,
                    optional=bool(item.get("optional", False)),
                )
            )
        except (KeyError, TypeError, ValueError) as error:
            raise PackagingError(f"{where}: bad tensor {item!r}: {error}") from None
    return tuple(tensors)


def _steps(
    raw: list[dict[str, Any]], names: dict[str, str], where: str
) -> tuple[EnsembleStep, ...]:
    steps = []
    for item in raw:
        member = item.get("model")
        if member not in names:
            raise PackagingError(f"{where}: ensemble step names unknown model {member!r}")
        steps.append(
            EnsembleStep(
                model_name=names[member],
                input_map=dict(item.get("inputs") or {}),
                output_map=dict(item.get("outputs") or {}),
            )
        )
    return tuple(steps)
