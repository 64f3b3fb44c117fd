"""Experiment: one training recipe on BANKING77 or the 30-intent customer proxy, one JSON line.

    .venv/bin/python bench/bench_training_recipes.py --data banking77|customer30
        [--kinds classifier,embedding] [--classifier KEY=VALUE ...] [--embedding KEY=VALUE ...]
        [--threads 2] [--label NAME]

Runs `finetune_classifier` / `finetune_embedding` (the code `mme-factory train` runs for those
kinds) with the default settings, each overridden by the KEY=VALUE pairs given (values are
parsed as JSON when they can be, e.g. `learning_rate=2e-4`, `time_budget_minutes=null`), and
scores the model on the test split. `customer30` is the proxy of a 30-intent customer built
from BANKING77 (`customer_proxy.customer30`). Appends the result to bench/results/recipes.jsonl.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from customer_proxy import banking77, customer30

from mme_factory.settings import load_settings
from tasks.data.training_data import CustomerDataset
from tasks.training.classifier import finetune_classifier
from tasks.training.embedding import finetune_embedding
from tasks.training.progress import LOGGER_NAME
from tasks.training.reproducibility import seed_everything

REPO = Path(__file__).resolve().parent.parent


def overrides(pairs: list[str]) -> dict[str, Any]:
    parsed: dict[str, Any] = {}
    for pair in pairs:
        key, _, text = pair.partition("=")
        try:
            parsed[key] = json.loads(text)
        except json.JSONDecodeError:
            parsed[key] = text
    return parsed


def headline(metrics: dict[str, Any]) -> dict[str, float]:
    return {name: value for name, value in metrics.items() if isinstance(value, float)}


def run_classifier(data: CustomerDataset, test: Any, update: dict[str, Any]) -> dict[str, Any]:
    t = load_settings(environ={}).training
    config = t.classifier.model_copy(update=update)
    started, cpu_started = time.monotonic(), time.process_time()
    model = finetune_classifier(data, config, t.held_out_fraction, t.seed, test)
    return {
        "wall_s": time.monotonic() - started,
        "cpu_s": time.process_time() - cpu_started,
        "base": headline(model.metrics["base"]),
        "fine_tuned": headline(model.metrics["fine_tuned"]),
        "timings": model.timings,
        "steps": model.steps.to_dict() if model.steps else None,
        "final_loss": model.final_loss,
        "overrides": update,
    }


def run_embedding(data: CustomerDataset, test: Any, update: dict[str, Any]) -> dict[str, Any]:
    t = load_settings(environ={}).training
    config = t.embedding.model_copy(update=update)
    started, cpu_started = time.monotonic(), time.process_time()
    model = finetune_embedding(data, config, t.held_out_fraction, t.seed, test)
    return {
        "wall_s": time.monotonic() - started,
        "cpu_s": time.process_time() - cpu_started,
        "base": model.metrics["base"],
        "fine_tuned": model.metrics["fine_tuned"],
        "timings": model.timings,
        "steps": model.steps.to_dict() if model.steps else None,
        "final_loss": model.final_loss,
        "overrides": update,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", choices=("banking77", "customer30"), default="banking77")
    parser.add_argument("--kinds", default="classifier")
    parser.add_argument("--classifier", nargs="*", default=[])
    parser.add_argument("--embedding", nargs="*", default=[])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--label", default="")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "recipes.jsonl")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger(LOGGER_NAME).setLevel(logging.INFO)
    seed = load_settings(environ={}).training.seed
    seed_everything(seed, args.threads)
    train, test = banking77() if args.data == "banking77" else customer30()
    data = CustomerDataset(args.data, "-", intents=train)
    result: dict[str, Any] = {
        "label": args.label,
        "data": args.data,
        "train_rows": len(train),
        "test_rows": len(test),
        "started_at": datetime.now(UTC).isoformat(),
        "load_average_at_start": os.getloadavg(),
    }
    started = time.monotonic()
    for kind in args.kinds.split(","):
        seed_everything(seed, args.threads)
        if kind == "classifier":
            result[kind] = run_classifier(data, test, overrides(args.classifier))
        else:
            result[kind] = run_embedding(data, test, overrides(args.embedding))
        print(json.dumps({kind: result[kind]}, default=str), flush=True)
    result["wall_s"] = time.monotonic() - started
    result["load_average_at_end"] = os.getloadavg()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with args.out.open("a", encoding="utf-8") as out:
        out.write(json.dumps(result, default=str) + "\n")
    print(f"{args.label}: {args.data} {args.kinds} {result['wall_s']:.1f} s")


if __name__ == "__main__":
    main()
