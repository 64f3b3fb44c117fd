"""Smoke inference: call each newly registered TargetModel through its endpoint.

Each kind's served answers are checked against the exported model run in-process on the same
inputs (held-out texts recorded by training), and cold and warm latency are recorded.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from prefect import task
from prefect.cache_policies import NO_CACHE
from pydantic import JsonValue
from tokenizers import Tokenizer

from mme_factory.errors import MmeFactoryError
from mme_factory.inference_client import InferenceClient, InferenceFailed, InvocationResult
from mme_factory.model_kinds import AUTOCOMPLETE_TIME_LIMIT_MS, ModelKind, describe
from mme_factory.records import EmbeddingExport
from mme_factory.settings import Settings
from tasks.deployment.publish.register_mme import Registration

EMBEDDING_TOLERANCE = 1e-3


class SmokeTestFailed(MmeFactoryError):
    """A served model answered wrongly, or not at all."""


@dataclass
class SmokeResult:
    endpoint: str
    target_model: str
    kind: str
    passed: bool
    cold_ms: float
    warm_ms: float
    detail: str
    checks: dict[str, JsonValue] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def invoke(
    client: InferenceClient, registration: Registration, inputs: dict[str, list[Any]]
) -> InvocationResult:
    """One call of the registered TargetModel; a call that fails fails the smoke test."""
    try:
        return client.invoke_target(
            registration.endpoint, registration.target_model, registration.kind, inputs
        )
    except InferenceFailed as error:
        raise SmokeTestFailed(str(error)) from error


def _offline_tokens(export_dir: Path, texts: list[str]) -> dict[str, torch.Tensor]:
    tokenizer = Tokenizer.from_file(str(export_dir / "tokenizer.json"))
    tokenizer.enable_padding()
    encodings = tokenizer.encode_batch(texts)
    return {
        "input_ids": torch.tensor([e.ids for e in encodings]),
        "attention_mask": torch.tensor([e.attention_mask for e in encodings]),
    }


def _offline(export_dir: Path, texts: list[str]) -> np.ndarray:
    model = torch.jit.load(str(export_dir / "model.pt"))
    with torch.inference_mode():
        return model(**_offline_tokens(export_dir, texts)).numpy()


def check_embedding(
    outputs: dict[str, np.ndarray], export_dir: Path, texts: list[str]
) -> dict[str, JsonValue]:
    served = outputs["embedding"].astype(np.float32)
    norms = np.linalg.norm(served, axis=1)
    difference = float(np.abs(served - _offline(export_dir, texts)).max())
    export = EmbeddingExport.read(export_dir)
    return {
        "shape_ok": served.shape == (len(texts), export.dim),
        "unit_norm": bool(np.allclose(norms, 1.0, atol=1e-3)),
        "max_abs_diff_vs_offline": difference,
        "agrees_offline": difference <= EMBEDDING_TOLERANCE,
    }


def check_classifier(
    outputs: dict[str, np.ndarray], export_dir: Path, texts: list[str]
) -> dict[str, JsonValue]:
    labels = (export_dir / "labels.txt").read_text(encoding="utf-8").splitlines()
    offline = [labels[i] for i in _offline(export_dir, texts).argmax(axis=1)]
    served = [
        value.decode() if isinstance(value, bytes) else str(value)
        for value in outputs["label"].reshape(-1)
    ]
    return {"served": served, "offline": offline, "predictions_equal": served == offline}


def check_autocomplete(
    outputs: dict[str, np.ndarray], export_dir: Path, texts: list[str], warm_ms: float
) -> dict[str, JsonValue]:
    completions = [
        value.decode() if isinstance(value, bytes) else str(value)
        for value in outputs["completion"].reshape(-1)
    ]
    return {
        "completions": completions,
        "non_empty": all(text.strip() for text in completions),
        "within_time_limit": warm_ms <= AUTOCOMPLETE_TIME_LIMIT_MS * 1.5,
    }


CHECKS: dict[
    ModelKind, Callable[[dict[str, np.ndarray], Path, list[str]], dict[str, JsonValue]]
] = {
    ModelKind.EMBEDDING: check_embedding,
    ModelKind.CLASSIFIER: check_classifier,
}
REQUIRED = {
    ModelKind.EMBEDDING: ("shape_ok", "unit_norm", "agrees_offline"),
    ModelKind.CLASSIFIER: ("predictions_equal",),
    ModelKind.AUTOCOMPLETE: ("non_empty", "within_time_limit"),
}


def smoke_inference(
    registration: Registration, export_dir: Path, texts: list[str], settings: Settings
) -> SmokeResult:
    """Invoke the TargetModel twice (cold, then warm) and check the second answer.

    The cold figure is the first call's whole latency, waits for a loading model included.
    """
    client = InferenceClient.from_settings(settings)
    kind = ModelKind(registration.kind)
    description = describe(kind)
    texts = texts[: description.smoke_batch]
    inputs = description.smoke_request(texts)
    cold = invoke(client, registration, inputs)
    warm = invoke(client, registration, inputs)
    outputs, cold_ms, warm_ms = warm.outputs, cold.latency_ms, warm.latency_ms
    if kind == ModelKind.AUTOCOMPLETE:
        checks = check_autocomplete(outputs, export_dir, texts, warm_ms)
    else:
        checks = CHECKS[kind](outputs, export_dir, texts)
    failed = [name for name in REQUIRED[kind] if not checks.get(name)]
    detail = "all checks passed" if not failed else "failed: " + ", ".join(failed)
    return SmokeResult(
        registration.endpoint,
        registration.target_model,
        kind,
        not failed,
        cold_ms,
        warm_ms,
        detail,
        checks,
    )


@task(name="smoke-inference", cache_policy=NO_CACHE)
def smoke_inference_task(
    registration: Registration, export_dir: Path, texts: list[str], settings: Settings
) -> SmokeResult:
    """Call the new TargetModel through the endpoint; raise if any check fails."""
    result = smoke_inference(registration, export_dir, texts, settings)
    if not result.passed:
        raise SmokeTestFailed(
            f"{result.target_model} on {result.endpoint}: {result.detail} "
            f"({json.dumps(result.checks, default=str)[:500]})"
        )
    return result
