"""Load one TorchScript export under another torch and compare it with its recorded outputs.

Run by the interpreter of an environment holding the serving image's libtorch version, not by
the pipeline: it imports only torch and the standard library (Python 3.10 compatible).

    python libtorch_probe.py MODEL_PT PARITY_PT   ->  one JSON line on stdout
"""

from __future__ import annotations

import json
import sys
import time

import torch


def probe(model_path: str, parity_path: str) -> dict[str, object]:
    started = time.perf_counter()
    result: dict[str, object] = {"torch": torch.__version__, "model": model_path}
    try:
        module = torch.jit.load(model_path, map_location="cpu").eval()
    except Exception as error:  # the answer is the error itself
        return {**result, "loaded": False, "error": f"{type(error).__name__}: {error}"}
    result["loaded"] = True
    parity = torch.load(parity_path, map_location="cpu", weights_only=True)
    worst = 0.0
    try:
        with torch.inference_mode():
            for batch, expected in zip(parity["batches"], parity["outputs"], strict=True):
                produced = module(**batch)
                worst = max(worst, (produced - expected).abs().max().item())
    except Exception as error:
        return {**result, "error": f"{type(error).__name__}: {error}"}
    return {
        **result,
        "batches": len(parity["batches"]),
        "max_abs_diff": worst,
        "tolerance": float(parity["tolerance"]),
        "seconds": round(time.perf_counter() - started, 3),
    }


if __name__ == "__main__":
    print(json.dumps(probe(sys.argv[1], sys.argv[2])))
