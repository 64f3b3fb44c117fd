"""Packaged models on a real Triton server, through the SageMaker multi-model routes.

One server per module, on free ports, stopped by PID. Two customers' tiny exports are packaged,
extracted as SageMaker does (`<models>/<hash>/model/`) and loaded with `POST /models`; every
answer must match the same model run in-process within 1e-4.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from tokenizers import Tokenizer

from mme_factory.protocol import kserve_outputs, kserve_request
from mme_factory.settings import load_settings
from mme_factory.triton import TritonError, TritonRuntime, TritonServer
from tasks.packaging.model_tarball import extract_tarball
from tasks.packaging.package_triton import PackagedModel, package_triton
from tasks.training.autocomplete.export import reference_decoder
from tasks.training.autocomplete.llama_decoder import complete_text
from test_support.tiny_exports import LABELS, MAX_LENGTH, write_tiny_run
from triton_models.autocomplete.code.v2.completion_text import build_prompt

pytestmark = pytest.mark.integration

TOLERANCE = 1e-4
ONE_TOKEN = "hello"
TOO_LONG = " ".join(["refund request for a damaged parcel"] * 8)
NON_ASCII = "Können Sie mir helfen? 配達が遅れています 😀"
EMPTY = ""
SINGLE_TEXTS = [ONE_TOKEN, TOO_LONG, NON_ASCII, EMPTY]
BATCH_OF_8 = [ONE_TOKEN, TOO_LONG, NON_ASCII, EMPTY, "where is my order", "a", "ok thanks", "é"]


class Served:
    """The server plus, per customer and target, the loaded name and the exported files."""

    def __init__(self, server: TritonServer) -> None:
        self.server = server
        self.names: dict[tuple[str, str], str] = {}
        self.exports: dict[tuple[str, str], Path] = {}

    def infer(self, customer: str, target: str, inputs: dict[str, list]) -> dict[str, np.ndarray]:
        status, _, body = self.server.invoke(self.names[customer, target], kserve_request(inputs))
        assert status == 200, body.decode(errors="replace")
        return kserve_outputs(body)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    settings = load_settings(environ={})
    work = tmp_path_factory.mktemp("triton")
    server = TritonServer(TritonRuntime.from_settings(settings), work, work / "triton.log")
    server.start(timeout_s=settings.triton.server_start_timeout_s)
    try:
        result = Served(server)
        for customer, seed, kinds in (("acme", 1, None), ("globex", 11, ["embedding"])):
            run = write_tiny_run(work / "state", customer, "run-1", seed)
            summary = package_triton(run, settings, kinds=kinds)
            for package in summary.packages:
                _load_like_sagemaker(result, package, work / "models", run)
        yield result
    finally:
        server.stop()
    assert not server.alive


def _load_like_sagemaker(served: Served, package: PackagedModel, models: Path, run: Path) -> None:
    name = f"{package.customer}-{package.target}"  # SageMaker passes a hash; any name works
    repository = extract_tarball(Path(package.tarball), models / name / "model")
    served.server.load(name, repository, timeout_s=120)
    served.names[package.customer, package.target] = name
    role = package.role
    served.exports[package.customer, package.target] = (
        run / package.kind / role if role else run / package.kind
    )


def _in_process_tokens(export: Path, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    tokenizer = Tokenizer.from_file(str(export / "tokenizer.json"))
    tokenizer.enable_truncation(max_length=MAX_LENGTH)
    tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
    encodings = tokenizer.encode_batch(texts)
    ids = torch.tensor([e.ids for e in encodings], dtype=torch.int64)
    mask = torch.tensor([e.attention_mask for e in encodings], dtype=torch.int64)
    return ids, mask


def _in_process(export: Path, texts: list[str]) -> np.ndarray:
    module = torch.jit.load(str(export / "model.pt")).eval()
    with torch.inference_mode():
        return module(*_in_process_tokens(export, texts)).numpy()


@pytest.mark.parametrize("target", ["embedding-query", "embedding-article"])
@pytest.mark.parametrize(
    "texts",
    [[text] for text in SINGLE_TEXTS] + [BATCH_OF_8],
    ids=["1-token", "long", "non-ascii", "empty", "batch-8"],
)
def test_embedding_matches_in_process(served: Served, target: str, texts: list[str]) -> None:
    outputs = served.infer("acme", target, {"text": texts})
    expected = _in_process(served.exports["acme", target], texts)
    assert outputs["embedding"].shape == (len(texts), expected.shape[1])
    np.testing.assert_allclose(outputs["embedding"], expected, atol=TOLERANCE, rtol=0)


@pytest.mark.parametrize(
    "texts",
    [[text] for text in SINGLE_TEXTS] + [BATCH_OF_8],
    ids=["1-token", "long", "non-ascii", "empty", "batch-8"],
)
def test_classifier_matches_in_process(served: Served, texts: list[str]) -> None:
    outputs = served.infer("acme", "classifier", {"text": texts})
    expected = _in_process(served.exports["acme", "classifier"], texts)
    np.testing.assert_allclose(outputs["probabilities"], expected, atol=TOLERANCE, rtol=0)
    best = expected.argmax(axis=1)
    assert [label for (label,) in outputs["label"]] == [LABELS[i] for i in best]
    np.testing.assert_allclose(outputs["probability"][:, 0], expected.max(axis=1), atol=TOLERANCE)


def _in_process_completion(
    export: Path, text: str, new_tokens: int, stop: list[str] | None = None, reply_start: str = ""
) -> tuple[str, str]:
    decoder = reference_decoder(export)
    exported = json.loads((export / "export.json").read_text())
    tokenizer = Tokenizer.from_file(str(export / "tokenizer.json"))
    tokenizer.no_padding()
    tokenizer.no_truncation()
    result = complete_text(
        decoder,
        tokenizer,
        build_prompt(exported["prompt_format"], text, reply_start),
        exported["max_length"],
        exported["eos_token_id"],
        new_tokens,
        exported["stop"] if stop is None else stop,
    )
    return result.text or "", result.finish_reason


@pytest.mark.parametrize(
    "texts",
    [[text] for text in SINGLE_TEXTS] + [BATCH_OF_8[:3]],
    ids=["1-token", "long", "non-ascii", "empty", "batch-3"],
)
def test_autocomplete_matches_in_process(served: Served, texts: list[str]) -> None:
    outputs = served.infer(
        "acme", "autocomplete", {"text": texts, "max_new_tokens": [6] * len(texts)}
    )
    export = served.exports["acme", "autocomplete"]
    expected = [_in_process_completion(export, text, 6) for text in texts]
    assert [c for (c,) in outputs["completion"]] == [text for text, _ in expected]
    assert [r for (r,) in outputs["finish_reason"]] == [reason for _, reason in expected]


def test_autocomplete_honours_stop_strings(served: Served) -> None:
    export = served.exports["acme", "autocomplete"]
    free, _ = _in_process_completion(export, ONE_TOKEN, 6)
    stop = free.split()[2]
    outputs = served.infer(
        "acme", "autocomplete", {"text": [ONE_TOKEN], "max_new_tokens": [6], "stop": [[stop]]}
    )
    assert outputs["finish_reason"][0, 0] == "stop"
    assert outputs["completion"][0, 0] == free[: free.index(stop)]


def test_autocomplete_continues_the_reply_typed_so_far(served: Served) -> None:
    export = served.exports["acme", "autocomplete"]
    inputs = {"text": [NON_ASCII], "reply_start": ["Sorry about"], "max_new_tokens": [5]}
    outputs = served.infer("acme", "autocomplete", inputs)
    expected, _ = _in_process_completion(export, NON_ASCII, 5, reply_start="Sorry about")
    assert outputs["completion"][0, 0] == expected
    assert expected != _in_process_completion(export, NON_ASCII, 5)[0]


def test_two_customers_of_one_kind_are_loaded_at_once_and_answer_differently(
    served: Served,
) -> None:
    loaded = set(served.server.list_models())
    assert {"acme-embedding-query", "globex-embedding-query"} <= loaded
    acme = served.infer("acme", "embedding-query", {"text": BATCH_OF_8})["embedding"]
    globex = served.infer("globex", "embedding-query", {"text": BATCH_OF_8})["embedding"]
    assert np.abs(acme - globex).max() > 0.05
    expected = _in_process(served.exports["globex", "embedding-query"], BATCH_OF_8)
    np.testing.assert_allclose(globex, expected, atol=TOLERANCE, rtol=0)


def test_resident_memory_counts_the_stub_processes(served: Served) -> None:
    assert served.server.resident_memory_bytes() > 200 * 1024**2


def test_loading_a_missing_repository_keeps_tritons_status(served: Served, tmp_path: Path) -> None:
    with pytest.raises(TritonError) as raised:
        served.server.load("nothing", tmp_path / "absent")
    assert raised.value.status == 400
    assert "not found" in raised.value.message


def test_unloaded_model_is_gone(served: Served) -> None:
    name = served.names["globex", "embedding-article"]
    served.server.unload(name)
    assert name not in served.server.list_models()
    status, _, _ = served.server.invoke(name, kserve_request({"text": ["hi"]}))
    assert status == 404
