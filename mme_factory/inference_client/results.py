"""Typed answers of the three model kinds, read from the served models' output tensors."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mme_factory.inference_client.errors import UnreadableAnswer
from mme_factory.inference_client.targets import Target


@dataclass(frozen=True)
class InvocationResult:
    """One InvokeEndpoint call that succeeded, maybe after retries."""

    endpoint: str
    target_model: str
    outputs: dict[str, np.ndarray]
    latency_ms: float  # from the first attempt's start to the answer, waits included
    attempts: int


@dataclass(frozen=True)
class Embeddings:
    vectors: np.ndarray  # [texts, dim] float32, unit length
    target: Target
    latency_ms: float
    attempts: int


@dataclass(frozen=True)
class Classification:
    label: str
    probability: float
    target: Target
    latency_ms: float
    attempts: int


@dataclass(frozen=True)
class Completion:
    text: str
    finish_reason: str
    target: Target
    latency_ms: float
    attempts: int


def texts_of(array: np.ndarray) -> list[str]:
    """A BYTES output, one string per row."""
    return [v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in array.reshape(-1)]


def output(result: InvocationResult, name: str) -> np.ndarray:
    if name not in result.outputs:
        raise UnreadableAnswer(
            f"{result.target_model} on {result.endpoint} answered without output {name!r} "
            f"(it gave {sorted(result.outputs)}): is it a model of the expected kind?",
            endpoint=result.endpoint,
            target_model=result.target_model,
            attempts=result.attempts,
        )
    return result.outputs[name]


def embeddings(result: InvocationResult, target: Target, rows: int) -> Embeddings:
    vectors = output(result, "embedding").astype(np.float32, copy=False).reshape(rows, -1)
    return Embeddings(vectors, target, result.latency_ms, result.attempts)


def classifications(result: InvocationResult, target: Target) -> list[Classification]:
    labels = texts_of(output(result, "label"))
    probabilities = output(result, "probability").reshape(-1).tolist()
    return [
        Classification(label, float(p), target, result.latency_ms, result.attempts)
        for label, p in zip(labels, probabilities, strict=True)
    ]


def completions(result: InvocationResult, target: Target) -> list[Completion]:
    texts = texts_of(output(result, "completion"))
    reasons = (
        texts_of(result.outputs["finish_reason"])
        if "finish_reason" in result.outputs
        else [""] * len(texts)
    )
    return [
        Completion(text, reason, target, result.latency_ms, result.attempts)
        for text, reason in zip(texts, reasons, strict=True)
    ]
