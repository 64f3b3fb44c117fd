"""GPU proof of exported models: each kind's `model.pt` loaded onto the GPU, checked against the
CPU in float32 and float16, its GPU memory per loaded copy, and its speed.

Standalone: needs only Python 3.10+ and torch (no project code, no network), so it runs on any
machine with an NVIDIA GPU from a bundle of exports (`bench/gpu_bundle.py` makes one from a
run directory). Without a GPU it runs the same steps on the CPU, so it can be tried anywhere.

    python bench/gpu_check.py BUNDLE [--out gpu_check.json] [--copies 8]

BUNDLE holds one directory per exported model (`embedding`, `classifier`, `autocomplete`), each
with `model.pt` and `export.json`. The JSON it writes is what `mme-factory plan --measured`
reads: per kind the dtype, the GPU MiB one loaded copy holds, the peak MiB of a request at the
largest batch, the latency of one request and requests (and, for autocomplete, tokens) per
second at batch 1, 8 and 32.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

SCHEMA = "mme-factory/gpu-check/1"
KINDS = ("embedding", "classifier", "autocomplete")
BATCHES = (1, 8, 32)
PROMPT_TOKENS = 30  # a typical support message
NEW_TOKENS = 16
REPEATS = 10
TOLERANCE = {torch.float32: 1e-3, torch.float16: 2e-2}  # of outputs, or of logits' scale
MIB = 1024**2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("bundle", type=Path)
    parser.add_argument("--out", type=Path, default=Path("gpu_check.json"))
    parser.add_argument("--copies", type=int, default=8, help="copies loaded to measure memory")
    args = parser.parse_args()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    started = time.monotonic()
    found = [kind for kind in KINDS if (args.bundle / kind / "model.pt").is_file()]
    if not found:
        raise SystemExit(f"{args.bundle} holds none of {', '.join(KINDS)} (each with model.pt)")
    kinds = {kind: check_kind(args.bundle / kind, kind, device, args.copies) for kind in found}
    document = {
        "schema": SCHEMA,
        "device": torch.cuda.get_device_name(0)
        if device == "cuda"
        else f"cpu ({platform.machine()})",
        "torch": torch.__version__,
        "cuda": torch.version.cuda if device == "cuda" else None,
        "on_gpu": device == "cuda",
        "elapsed_s": round(time.monotonic() - started, 1),
        "kinds": kinds,
    }
    args.out.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    print_table(document)
    print(f"wrote {args.out}")
    failed = [kind for kind, r in kinds.items() if False in r["parity_ok"].values()]
    if failed:
        raise SystemExit(f"parity failed on {document['device']}: {', '.join(failed)}")


def check_kind(directory: Path, kind: str, device: str, copies: int) -> dict[str, Any]:
    export = json.loads((directory / "export.json").read_text(encoding="utf-8"))
    path = directory / "model.pt"
    stored = next(torch.jit.load(str(path), map_location="cpu").parameters()).dtype
    print(f"{kind}: {path} ({path.stat().st_size / MIB:.1f} MiB, {stored}) on {device} ...")
    parity = {name: check_parity(path, kind, export, device, dtype) for name, dtype in DTYPES}
    model = torch.jit.load(str(path), map_location=device).eval()
    memory = loaded_memory(path, device, copies)
    peak = request_peak(model, kind, export, device, max(BATCHES))
    timings = {batch: time_request(model, kind, export, device, batch) for batch in BATCHES}
    figures: dict[str, Any] = {
        "dtype": str(stored).removeprefix("torch."),
        "file_mib": path.stat().st_size / MIB,
        "gpu_mib_per_model": memory,
        "peak_request_mib": peak,
        "request_ms": timings[1]["ms"],
        "requests_per_s": {str(b): b * 1000 / t["ms"] for b, t in timings.items()},
        "parity_max_diff": {name: value for name, (value, _) in parity.items()},
        "parity_ok": {name: ok for name, (_, ok) in parity.items()},
    }
    if kind == "autocomplete":
        figures["tokens_per_s"] = {str(b): t["tokens"] * 1000 / t["ms"] for b, t in timings.items()}
    return figures


DTYPES = (("float32", torch.float32), ("float16", torch.float16))


def inputs(
    kind: str, export: dict[str, Any], vocab: int, batch: int, device: str
) -> tuple[torch.Tensor, ...]:
    generator = torch.Generator().manual_seed(batch)
    length = min(PROMPT_TOKENS, int(export.get("max_length", PROMPT_TOKENS)))
    low = 1000 if vocab > 2000 else 1
    ids = torch.randint(low, vocab, (batch, length), generator=generator)
    mask = torch.ones_like(ids)
    for row in range(1, batch, 2):  # every other row shorter: padding is exercised
        cut = max(1, length - 3 * row)
        if kind == "autocomplete":  # left-padded, as the tokenizer step sends them
            ids[row, : length - cut], mask[row, : length - cut] = 0, 0
        else:
            ids[row, cut:], mask[row, cut:] = 0, 0
    tensors: tuple[torch.Tensor, ...] = (ids, mask)
    if kind == "autocomplete":
        tensors += (torch.full((batch, 1), NEW_TOKENS, dtype=torch.int64),)
    return tuple(tensor.to(device) for tensor in tensors)


def vocabulary(model: torch.jit.ScriptModule) -> int:
    tables = [p for name, p in model.named_parameters() if "embed" in name and p.dim() == 2]
    return max(table.shape[0] for table in tables)


def outputs(model: torch.jit.ScriptModule, kind: str, tensors: tuple[torch.Tensor, ...]) -> Any:
    with torch.inference_mode():
        if kind == "autocomplete":
            return model.logits(tensors[0], tensors[1]).float()
        return model(*tensors).float()


def check_parity(
    path: Path, kind: str, export: dict[str, Any], device: str, dtype: torch.dtype
) -> tuple[float | None, bool | None]:
    """The largest difference between the model at `dtype` on `device` and float32 on the CPU,
    relative to the outputs' scale when that exceeds 1 (a decoder's logits).

    float32: the file with every weight made float32. float16: the file as exported, when it
    was exported in half precision (which parts run in half is the export's choice); (None,
    None) for a float32 export."""
    reference = torch.jit.load(str(path), map_location="cpu").float().eval()
    tested = torch.jit.load(str(path), map_location=device).eval()
    if dtype == torch.float32:
        tested = tested.float()
    elif next(tested.parameters()).dtype != dtype:
        return None, None
    tensors = inputs(kind, export, vocabulary(reference), 8, "cpu")
    expected = outputs(reference, kind, tensors)
    got = outputs(tested, kind, tuple(t.to(device) for t in tensors)).cpu()
    mask = tensors[1][..., None].bool() if kind == "autocomplete" else None
    if mask is not None:
        expected, got = expected * mask, got * mask
    difference = (expected - got).abs().max().item() / max(1.0, expected.abs().max().item())
    return difference, difference <= TOLERANCE[dtype]


def loaded_memory(path: Path, device: str, copies: int) -> float:
    """MiB one loaded copy holds: the allocator's growth over `copies` loads, divided."""
    if device != "cuda":
        model = torch.jit.load(str(path), map_location=device)
        tensors = {id(t): t for t in [*model.parameters(), *model.buffers()]}.values()
        return sum(t.numel() * t.element_size() for t in tensors) / MIB
    torch.cuda.synchronize()
    before = torch.cuda.memory_allocated()
    loaded = [torch.jit.load(str(path), map_location=device) for _ in range(copies)]
    torch.cuda.synchronize()
    per_copy = (torch.cuda.memory_allocated() - before) / copies / MIB
    del loaded
    torch.cuda.empty_cache()
    return per_copy


def request_peak(
    model: torch.jit.ScriptModule, kind: str, export: dict[str, Any], device: str, batch: int
) -> float | None:
    """MiB a request at `batch` allocates beyond the weights (activations, key/value cache)."""
    if device != "cuda":
        return None
    tensors = inputs(kind, export, vocabulary(model), batch, device)
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    before = torch.cuda.memory_allocated()
    with torch.inference_mode():
        model(*tensors)
    torch.cuda.synchronize()
    return (torch.cuda.max_memory_allocated() - before) / MIB


def time_request(
    model: torch.jit.ScriptModule, kind: str, export: dict[str, Any], device: str, batch: int
) -> dict[str, float]:
    tensors = inputs(kind, export, vocabulary(model), batch, device)
    sync: Callable[[], None] = torch.cuda.synchronize if device == "cuda" else lambda: None
    times, tokens = [], 0
    with torch.inference_mode():
        for repeat in range(REPEATS + 2):
            sync()
            started = time.perf_counter()
            result = model(*tensors)
            sync()
            if repeat >= 2:  # the first calls profile and compile
                times.append((time.perf_counter() - started) * 1000)
        if kind == "autocomplete":
            tokens = int((result[0] >= 0).sum().item())
    return {"ms": statistics.median(times), "tokens": float(tokens)}


def print_table(document: dict[str, Any]) -> None:
    print(f"\n{document['device']} (torch {document['torch']}, cuda {document['cuda']})")
    print(
        f"{'kind':<13} {'dtype':<8} {'MiB/copy':>8} {'peak@32':>8} {'ms@1':>7} {'req/s@8':>8} "
        f"{'req/s@32':>9} {'tok/s@1':>8} {'tok/s@8':>8} {'tok/s@32':>9} parity fp32 / fp16"
    )
    for kind, r in document["kinds"].items():
        tokens = r.get("tokens_per_s", {})
        peak = "-" if r["peak_request_mib"] is None else f"{r['peak_request_mib']:.1f}"
        parity = " / ".join(_parity_cell(r, name) for name in ("float32", "float16"))
        print(
            f"{kind:<13} {r['dtype']:<8} {r['gpu_mib_per_model']:>8.1f} {peak:>8} "
            f"{r['request_ms']:>7.2f} {r['requests_per_s']['8']:>8.1f} "
            f"{r['requests_per_s']['32']:>9.1f} {tokens.get('1', 0):>8.0f} "
            f"{tokens.get('8', 0):>8.0f} {tokens.get('32', 0):>9.0f} {parity}"
        )


def _parity_cell(figures: dict[str, Any], dtype: str) -> str:
    difference = figures["parity_max_diff"][dtype]
    if difference is None:
        return "-"
    return f"{difference:.1e}{'' if figures['parity_ok'][dtype] else ' FAIL'}"


if __name__ == "__main__":
    main()
