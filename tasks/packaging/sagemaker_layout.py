"""Refuse a TargetModel layout that SageMaker's Triton container would not load as one model.

The container loads the tarball's only model, or else the one model whose platform is
"ensemble", and that ensemble's members from the same tarball; nothing else is loaded. So a
tarball holds exactly one entry model, every step of its ensemble is in the tarball, every other
model is one of its steps, and no Python model calls another through business-logic scripting
(BLS), whose target would not be loaded.
"""

from __future__ import annotations

import ast

from tasks.packaging.python_imports import parse_python
from tasks.packaging.triton_config import PackagingError, TritonModelSpec

BLS_REQUEST = "InferenceRequest"


def entry_model(specs: list[TritonModelSpec]) -> TritonModelSpec:
    """The model SageMaker invokes: the only one, or the only ensemble."""
    if len(specs) == 1:
        return specs[0]
    ensembles = [spec for spec in specs if spec.is_ensemble]
    if len(ensembles) != 1:
        names = ", ".join(spec.name for spec in ensembles) or "none"
        raise PackagingError(
            f"a TargetModel of {len(specs)} models needs exactly one ensemble to be its entry "
            f"(found: {names}); SageMaker would not know which to load"
        )
    return ensembles[0]


def check_sagemaker_layout(
    specs: list[TritonModelSpec], python_sources: dict[str, dict[str, bytes]]
) -> TritonModelSpec:
    """Check the layout; return the entry model. `python_sources`: model -> path -> source."""
    entry = entry_model(specs)
    names = {spec.name for spec in specs}
    steps = [step.model_name for step in entry.steps]
    absent = sorted(set(steps) - names)
    if absent:
        raise PackagingError(
            f"ensemble {entry.name} calls {absent}, which the tarball does not hold; SageMaker "
            "loads an ensemble's members from its own TargetModel only"
        )
    nested = sorted(spec.name for spec in specs if spec.is_ensemble and spec is not entry)
    unused = sorted(names - set(steps) - {entry.name})
    if nested or unused:
        raise PackagingError(
            f"ensemble {entry.name}: models {nested + unused} are not steps of the entry "
            "ensemble (or are ensembles themselves); SageMaker would not load them"
        )
    for model, sources in sorted(python_sources.items()):
        for path, source in sorted(sources.items()):
            calls = _bls_calls(source, path)
            if calls:
                raise PackagingError(
                    f"model {model} ({path}, line {calls[0]}) calls other models through "
                    "pb_utils.InferenceRequest; SageMaker loads only a TargetModel's ensemble "
                    "and its steps, so express the call as an ensemble step"
                )
    return entry


def _bls_calls(source: bytes, path: str) -> list[int]:
    tree = parse_python(source, path)
    return sorted(node.lineno for node in ast.walk(tree) if _is_bls_request(node))


def _is_bls_request(node: ast.AST) -> bool:
    if isinstance(node, ast.Attribute):
        return node.attr == BLS_REQUEST
    if isinstance(node, ast.ImportFrom):
        return any(alias.name == BLS_REQUEST for alias in node.names)
    return False
