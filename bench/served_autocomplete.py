"""Serve exported autocomplete models as the pipeline does and time completions through mme_local.

Each export is packaged into its TargetModel tarball (tasks/packaging), stored under one
endpoint's prefix of a private local store, and served by a private mme_local process driving
the real Triton server. Through the SageMaker-compatible InvokeEndpoint (InferenceClient) the
first completion of each TargetModel is its cold load; the next ones, on other real contexts,
are warm. Requests run one at a time with a time limit far above a completion's, so only
end-of-text and the export's stop strings end one before its 16 tokens.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from bench_pipeline import stack_environ
from bench_report import percentiles
from tokenizers import Tokenizer

from mme_factory.inference_client import InferenceClient
from mme_factory.inference_client.results import texts_of
from mme_factory.model_kinds import ModelKind, describe
from mme_factory.naming import TargetModelKey
from mme_factory.protocol import endpoint_path
from mme_factory.settings import Settings, load_settings
from tasks.packaging.package_triton import PackagedModel, package_export
from tasks.packaging.triton_layout import read_layout
from test_support.mme_local_harness import service_with_models

ENDPOINT = "dev-mme-autocomplete"
NEW_TOKENS = 16
TIME_LIMIT_MS = 60_000
MB = 2**20


@dataclass(frozen=True)
class PackagedBase:
    package: PackagedModel
    key: TargetModelKey
    tokenizer_path: Path


def package_for_endpoint(
    export_dir: Path, customer: str, settings: Settings, output_dir: Path
) -> PackagedBase:
    layout = read_layout(describe(ModelKind.AUTOCOMPLETE).layout)
    package = package_export(export_dir, layout, customer, "1", settings, output_dir)
    key = TargetModelKey(customer, ModelKind.AUTOCOMPLETE.value, None, 1)
    return PackagedBase(package, key, export_dir / "tokenizer.json")


def complete(client: InferenceClient, target_model: str, context: str) -> tuple[str, str, float]:
    """(completion, finish reason, wall ms) of one InvokeEndpoint call."""
    inputs: dict[str, list[Any]] = {
        "text": [context],
        "max_new_tokens": [NEW_TOKENS],
        "time_limit_ms": [TIME_LIMIT_MS],
    }
    started = time.perf_counter()
    result = client.invoke_target(ENDPOINT, target_model, "autocomplete", inputs)
    wall_ms = (time.perf_counter() - started) * 1000
    text = texts_of(result.outputs["completion"])[0]
    return text, texts_of(result.outputs["finish_reason"])[0], wall_ms


def time_target(
    client: InferenceClient, served: PackagedBase, contexts: list[str], requests: int
) -> dict[str, Any]:
    target_model = str(served.key)
    tokenizer = Tokenizer.from_file(str(served.tokenizer_path))
    _, cold_reason, cold_ms = complete(client, target_model, contexts[0])
    warm_ms: list[float] = []
    per_token_ms: list[float] = []
    reasons: dict[str, int] = {}
    samples: list[dict[str, str]] = []
    for context in contexts[1 : requests + 1]:
        text, reason, wall_ms = complete(client, target_model, context)
        warm_ms.append(wall_ms)
        # Re-encoding the decoded text counts the generated tokens to within a token or so.
        tokens = len(tokenizer.encode(text, add_special_tokens=False).ids)
        per_token_ms.append(wall_ms / max(1, tokens))
        reasons[reason] = reasons.get(reason, 0) + 1
        if len(samples) < 3:
            samples.append({"context": context[-120:], "completion": text, "finish": reason})
    return {
        "target_model": target_model,
        "tarball_bytes": served.package.size_bytes,
        "cold_s": cold_ms / 1000,
        "cold_finish_reason": cold_reason,
        "warm_ms": percentiles(warm_ms),
        "ms_per_token_p50": float(np.median(per_token_ms)),
        "finish_reasons": reasons,
        "full_length_share": reasons.get("length", 0) / len(warm_ms),
        "samples": samples,
    }


def serve_and_time(
    work: Path, packaged: dict[str, PackagedBase], contexts: list[str], requests: int
) -> dict[str, Any]:
    """Cold load and warm completions of each TargetModel in turn on one endpoint, then the
    memory mme_local measured for each loaded model and for the endpoint's Triton."""
    if len(contexts) < requests + 1:
        raise ValueError(f"need {requests + 1} test contexts for {requests} warm requests")
    stored = {
        str(served.key): Path(served.package.tarball).read_bytes() for served in packaged.values()
    }
    environ = stack_environ(work, work / "store")
    with service_with_models(work, ENDPOINT, stored, environ) as service:
        runtime_url = {"MME_FACTORY_ENDPOINTS__SAGEMAKER_RUNTIME_ENDPOINT_URL": service.url}
        client = InferenceClient.from_settings(load_settings(environ={**environ, **runtime_url}))
        models = {
            name: time_target(client, served, contexts, requests)
            for name, served in packaged.items()
        }
        described = service.get_json(endpoint_path(ENDPOINT))
    loaded = {entry["target_model"]: entry for entry in described["models"]}
    for figures in models.values():
        entry = loaded.get(figures["target_model"])
        figures["memory_mb"] = entry["memory_bytes"] / MB if entry else None
        figures["load_timings_s"] = entry["timings_s"] if entry else None
    return {
        "models": models,
        "endpoint": {
            "name": ENDPOINT,
            "memory_mb": described["memory_bytes"] / MB,
            "rss_mb": described["rss_bytes"] / MB,
            "peak_memory_mb": described["peak_memory_bytes"] / MB,
        },
    }
