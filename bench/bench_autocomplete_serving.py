"""Autocomplete served on Triton: the TorchScript generator between two Python steps (the
current design) against the previous design (one Python-backend model importing torch), the
same exported model behind both, through Triton's SageMaker multi-model routes.

Measures, in one run on one machine:
- identical completions: 50 prompts from Taskmaster-4's test dialogs, each served alone and as
  batches of 8, against the in-process reference decoder (`LlamaDecoder.generate`);
- p50 latency of one 16-token completion at a time;
- throughput (completions per second) with 8 requests in flight.

The model is a compact decoder fine-tuned on Taskmaster-4's training replies (once; kept in
the work directory), or `--export DIR`. Prints a table and writes bench/results/
autocomplete_serving.json.

    .venv/bin/python bench/bench_autocomplete_serving.py [--minutes 3] [--export DIR]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pandas as pd
from autocomplete_baseline import BaselineRuntime, baseline_environment, baseline_repository
from tokenizers import Tokenizer

from mme_factory.model_kinds import ModelKind, describe
from mme_factory.protocol import kserve_outputs, kserve_request
from mme_factory.settings import load_settings
from mme_factory.triton import TritonRuntime, TritonServer
from tasks.data.training_data import CustomerDataset
from tasks.packaging.model_tarball import extract_tarball
from tasks.packaging.package_triton import package_export
from tasks.packaging.triton_layout import read_layout
from tasks.training.autocomplete.export import export_autocomplete, reference_decoder
from tasks.training.autocomplete.finetune import finetune_autocomplete
from tasks.training.autocomplete.llama_decoder import complete_text
from tasks.training.reproducibility import seed_everything
from triton_models.autocomplete.code.v2.completion_text import build_prompt

REPO = Path(__file__).resolve().parent.parent
TASKMASTER4 = REPO.parent / "shared" / "datasets" / "taskmaster4"
WORK = REPO / ".mme-factory" / "bench" / "autocomplete-serving"
RESULTS = REPO / "bench" / "results" / "autocomplete_serving.json"
PROMPTS = 50
BATCH = 8
CONCURRENCY = 8
NEW_TOKENS = 16
LATENCY_REQUESTS = 30
THROUGHPUT_REQUESTS = 64
SEED = 13
# Goals: identical completions (all at batch 1, all but one at batch 8), throughput at 8 in
# flight at least 3x the previous design's, p50 latency no worse.
GOAL_IDENTICAL_BATCH_1 = PROMPTS
GOAL_IDENTICAL_BATCH_8 = PROMPTS - 1
GOAL_THROUGHPUT_RATIO = 3.0

Invoke = Callable[[list[str]], list[str]]


def test_contexts(count: int) -> list[str]:
    frame = pd.read_json(TASKMASTER4 / "test.jsonl", lines=True, dtype=str)
    contexts = frame["context"].fillna("").drop_duplicates()
    return list(contexts.sample(n=count, random_state=SEED))


def trained_export(minutes: float) -> Path:
    """A compact decoder fine-tuned on Taskmaster-4's training replies, exported in float32."""
    export_dir = WORK / "export"
    if (export_dir / "export.json").is_file():
        return export_dir
    settings = load_settings(environ={"MME_FACTORY_STATE_DIR": str(WORK / "state")})
    t = settings.training
    config = t.autocomplete.model_copy(update={"time_budget_minutes": minutes})
    train = pd.read_json(TASKMASTER4 / "train.jsonl", lines=True, dtype=str)
    data = CustomerDataset(str(TASKMASTER4), "-", replies=train[["context", "reply"]].fillna(""))
    seed_everything(t.seed)
    print(f"fine-tuning a compact decoder on Taskmaster-4 for up to {minutes:g} min ...")
    model = finetune_autocomplete(data, config, t.held_out_fraction, t.seed, WORK / "base")
    export_autocomplete(
        model.model,
        model.tokenizer,
        model.eos_id,
        export_dir,
        config.max_length,
        t.export_parity_tolerance,
        max_new_tokens=config.max_new_tokens,
    )
    return export_dir


def reference_completions(export_dir: Path, contexts: list[str]) -> list[str]:
    exported = json.loads((export_dir / "export.json").read_text(encoding="utf-8"))
    decoder = reference_decoder(export_dir)
    tokenizer = Tokenizer.from_file(str(export_dir / "tokenizer.json"))
    tokenizer.no_padding()
    tokenizer.no_truncation()
    return [
        complete_text(
            decoder,
            tokenizer,
            build_prompt(exported["prompt_format"], context),
            exported["max_length"],
            exported["eos_token_id"],
            NEW_TOKENS,
            exported["stop"],
        ).text
        or ""
        for context in contexts
    ]


def invoker(server: TritonServer, name: str) -> Invoke:
    def invoke(texts: list[str]) -> list[str]:
        body = kserve_request({"text": texts, "max_new_tokens": [NEW_TOKENS] * len(texts)})
        status, _, answer = server.invoke(name, body)
        if status != 200:
            raise RuntimeError(f"{name} answered {status}: {answer[:300]!r}")
        return [str(row[0]) for row in kserve_outputs(answer)["completion"]]

    return invoke


def measure(invoke: Invoke, contexts: list[str], expected: list[str]) -> dict[str, Any]:
    invoke(contexts[:1])  # loaded and warm
    single = [invoke([context])[0] for context in contexts]
    batched = [
        text
        for start in range(0, len(contexts), BATCH)
        for text in invoke(contexts[start : start + BATCH])
    ]
    latencies = []
    for context in contexts[:LATENCY_REQUESTS]:
        started = time.perf_counter()
        invoke([context])
        latencies.append((time.perf_counter() - started) * 1000)
    requests = [contexts[i % len(contexts)] for i in range(THROUGHPUT_REQUESTS)]
    with ThreadPoolExecutor(CONCURRENCY) as pool:
        started = time.perf_counter()
        list(pool.map(lambda context: invoke([context]), requests))
        wall_s = time.perf_counter() - started
    return {
        "identical_batch_1": sum(a == b for a, b in zip(single, expected, strict=True)),
        "identical_batch_8": sum(a == b for a, b in zip(batched, expected, strict=True)),
        "differences": [
            {"context": c[-100:], "reference": e, "batch_1": s, "batch_8": b}
            for c, e, s, b in zip(contexts, expected, single, batched, strict=True)
            if not e == s == b
        ][:5],
        "p50_ms": statistics.median(latencies),
        "p95_ms": sorted(latencies)[int(0.95 * (len(latencies) - 1))],
        "throughput_per_s": THROUGHPUT_REQUESTS / wall_s,
    }


def serve(
    runtime: TritonRuntime, repository: Path, work: Path, run: Callable[[Invoke], Any]
) -> Any:
    server = TritonServer(runtime, work, work / "triton.log")
    server.start(timeout_s=60)
    try:
        server.load("autocomplete", repository, timeout_s=300)
        return run(invoker(server, "autocomplete"))
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--export", type=Path, help="an autocomplete export directory")
    parser.add_argument("--minutes", type=float, default=3.0, help="fine-tuning budget")
    args = parser.parse_args()
    if args.export is None and not (TASKMASTER4 / "test.jsonl").is_file():
        raise SystemExit(f"{TASKMASTER4} is missing: pass --export DIR")
    WORK.mkdir(parents=True, exist_ok=True)
    export_dir = args.export or trained_export(args.minutes)
    settings = load_settings(environ={})
    contexts = test_contexts(PROMPTS)
    expected = reference_completions(export_dir, contexts)
    layout = read_layout(describe(ModelKind.AUTOCOMPLETE).layout)
    package = package_export(export_dir, layout, "bench", "1", settings, WORK / "package")
    current = extract_tarball(Path(package.tarball), WORK / "current" / "model")
    previous = baseline_repository(
        export_dir, WORK / "previous" / "model", settings.triton.max_batch_size
    )
    results = {
        "current": serve(
            TritonRuntime.from_settings(settings),
            current,
            WORK / "current",
            lambda invoke: measure(invoke, contexts, expected),
        ),
        "previous": serve(
            BaselineRuntime(
                env_dir=TritonRuntime.from_settings(settings).env_dir,
                python_env_dir=baseline_environment(WORK / "previous-env"),
            ),
            previous,
            WORK / "previous",
            lambda invoke: measure(invoke, contexts, expected),
        ),
    }
    report(results, export_dir)


def report(results: dict[str, dict[str, Any]], export_dir: Path) -> None:
    current, previous = results["current"], results["previous"]
    ratio = current["throughput_per_s"] / previous["throughput_per_s"]
    goals = {
        "identical_batch_1": current["identical_batch_1"] >= GOAL_IDENTICAL_BATCH_1,
        "identical_batch_8": current["identical_batch_8"] >= GOAL_IDENTICAL_BATCH_8,
        "throughput_ratio_at_8": ratio >= GOAL_THROUGHPUT_RATIO,
        "p50_no_worse": current["p50_ms"] <= previous["p50_ms"],
    }
    print(f"\nautocomplete serving, {PROMPTS} Taskmaster-4 test prompts, {NEW_TOKENS} new tokens")
    print(f"{'design':<10} {'same@1':>7} {'same@8':>7} {'p50 ms':>7} {'p95 ms':>7} {'per s @8':>9}")
    for name, r in results.items():
        print(
            f"{name:<10} {r['identical_batch_1']:>4}/{PROMPTS} "
            f"{r['identical_batch_8']:>4}/{PROMPTS} {r['p50_ms']:>7.0f} {r['p95_ms']:>7.0f} "
            f"{r['throughput_per_s']:>9.2f}"
        )
    print(f"throughput at {CONCURRENCY} in flight: {ratio:.2f}x the previous design's")
    for goal, met in goals.items():
        print(f"  {goal}: {'met' if met else 'MISSED'}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    document = {
        "export": str(export_dir),
        "prompts": PROMPTS,
        "new_tokens": NEW_TOKENS,
        "concurrency": CONCURRENCY,
        "results": results,
        "throughput_ratio": ratio,
        "goals": goals,
    }
    RESULTS.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
