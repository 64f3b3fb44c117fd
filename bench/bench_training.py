"""Benchmark: fine-tune, evaluate and export on the sample customer, BANKING77 and Taskmaster-4.

    .venv/bin/python bench/bench_training.py
        [--sections sample,customer30,banking77,autocomplete,taskmaster4]
        [--budget-minutes 6] [--taskmaster-rows N] [--taskmaster-test-rows N] [--banking77-rows N]
        [--banking77-budget-minutes M]

sample       all three kinds plus export on examples/customers/acme with default settings:
             wall time per kind, metrics vs baseline, peak resident memory (target: < 5 min in
             all, no step above 4 GB).
customer30   a proxy of a 30-intent customer (CLINC150's travel domain, 3,600 train / 900 test
             texts, is not on this machine): 30 BANKING77 intents, 120 train.csv and 30 test.csv
             texts each (bench/customer_proxy.py); classifier and embedding with the default
             settings, wall time of each and in all (target: <= 300 s), metrics base -> tuned.
banking77    ../shared/datasets/banking77 when present: classifier (default recipe; no
             training-time budget unless --banking77-budget-minutes) trained on train.csv,
             accuracy and macro-F1 on test.csv, wall time, and whether accuracy reaches BERT-base's
             0.937 (Casanueva et al. 2020); embedding recall@1, base vs fine-tuned, same-intent
             retrieval of test texts among train texts.
autocomplete the two offline bases on the sample's replies: the compact decoder and SmolLM2-135M
             (held-out perplexity per word, next-word accuracy, training time, 16-token latency).
taskmaster4  ../shared/datasets/taskmaster4 when present: both bases fine-tuned on train.jsonl's
             real agent replies within the same training-time budget, scored on test.jsonl, then
             exported, packaged, served on mme_local (real Triton) and timed through InvokeEndpoint:
             cold load, warm p50/p95 of 16-token completions, tarball size, memory per model;
             picks the autocomplete default.
Prints tables; writes JSON under bench/results/.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import resource
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
from customer_proxy import customer30
from taskmaster4_autocomplete import bench_taskmaster4

from mme_factory.settings import load_settings
from mme_factory.settings.training import AutocompleteTraining
from tasks.data.training_data import CustomerDataset, load_dataset
from tasks.training.autocomplete.finetune import finetune_autocomplete
from tasks.training.classifier import ClassifierModel, finetune_classifier
from tasks.training.embedding import EmbeddingModel, finetune_embedding
from tasks.training.reproducibility import library_versions, seed_everything
from tasks.training.train_customer import train_customer

REPO = Path(__file__).resolve().parent.parent

ACME = REPO / "examples" / "customers" / "acme"
BANKING77 = REPO.parent / "shared" / "datasets" / "banking77"
# The training goal of a 30-intent customer (3,600 training texts): both kinds in 5 minutes.
CUSTOMER30_TARGET_S = 300
# Casanueva et al. 2020, "Efficient Intent Detection with Dual Sentence Encoders": BERT-base
# fine-tuned on the full BANKING77 training set.
BERT_BASE_ACCURACY = 0.937


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def bench_sample(state_dir: Path) -> dict:
    settings = load_settings(environ={"MME_FACTORY_STATE_DIR": str(state_dir)})
    started = time.monotonic()
    result = train_customer("acme", str(ACME), settings)
    total = time.monotonic() - started
    rows = {}
    for kind, outcome in result.outcomes.items():
        rows[kind] = {
            "status": outcome.status,
            "timings": outcome.timings,
            "metrics": {
                k: {m: v for m, v in values.items() if m != "per_intent"}
                for k, values in (outcome.metrics or {}).items()
            },
        }
    print(
        f"\nsample customer (acme), all kinds + export: {total:.1f} s, "
        f"peak RSS {peak_rss_mb():.0f} MB"
    )
    print(
        f"{'kind':<13} {'train s':>8} {'export s':>9} {'total s':>8}  metrics (baseline -> tuned)"
    )
    headline = {
        "embedding": ("base", ["recall_at_1", "recall_at_5", "mrr"]),
        "classifier": ("base", ["accuracy", "macro_f1"]),
        "autocomplete": ("unigram", ["perplexity_per_word", "next_word_accuracy"]),
    }
    for kind, row in rows.items():
        baseline, names = headline[kind]
        m = row["metrics"]
        shown = ", ".join(f"{n} {m[baseline][n]:.3f} -> {m['fine_tuned'][n]:.3f}" for n in names)
        t = row["timings"]
        print(
            f"{kind:<13} {t['train_s']:>8.1f} {t.get('export_s', 0):>9.1f} "
            f"{t['total_s']:>8.1f}  {shown}"
        )
    return {
        "total_s": total,
        "peak_rss_mb": peak_rss_mb(),
        "kinds": rows,
        "run_dir": str(result.run.path),
    }


def _banking(name: str, rows: int | None, seed: int) -> pd.DataFrame:
    frame = pd.read_csv(BANKING77 / name, dtype=str, keep_default_na=False)
    frame = frame.rename(columns={"category": "intent"})[["text", "intent"]]
    if rows is not None and rows < len(frame):
        frame = frame.sample(n=rows, random_state=seed).sort_index().reset_index(drop=True)
    return frame


def bench_banking77(rows: int | None, budget_minutes: float | None) -> dict:
    if not (BANKING77 / "train.csv").is_file():
        print("\nBANKING77: not present, skipped")
        return {"skipped": True}
    settings = load_settings(environ={})
    seed = settings.training.seed
    train, test = _banking("train.csv", rows, seed), _banking("test.csv", rows, seed)
    # A sample may miss intents: score only test rows whose intent the classifier learned.
    test = test[test["intent"].isin(set(train["intent"]))].reset_index(drop=True)
    data = CustomerDataset("banking77", "-", intents=train)
    t = settings.training
    classifier_config = t.classifier.model_copy(update={"time_budget_minutes": budget_minutes})
    started = time.monotonic()
    classifier = finetune_classifier(data, classifier_config, t.held_out_fraction, t.seed, test)
    classifier_s = time.monotonic() - started
    embedding_config = t.embedding.model_copy(update={"epochs": 1, "same_intent_pairs_per_text": 1})
    started = time.monotonic()
    embedding = finetune_embedding(data, embedding_config, t.held_out_fraction, t.seed, test)
    embedding_s = time.monotonic() - started
    result = {
        "train_rows": len(train),
        "test_rows": len(test),
        "intents": train["intent"].nunique(),
        "classifier": {
            "base_accuracy": classifier.metrics["base"]["accuracy"],
            "accuracy": classifier.metrics["fine_tuned"]["accuracy"],
            "macro_f1": classifier.metrics["fine_tuned"]["macro_f1"],
            "wall_s": classifier_s,
            "epochs": t.classifier.epochs,
            "steps": classifier.steps.to_dict() if classifier.steps else None,
            "settings": classifier_config.model_dump(),
            "bert_base_accuracy": BERT_BASE_ACCURACY,
            "reaches_bert_base": (
                classifier.metrics["fine_tuned"]["accuracy"] >= BERT_BASE_ACCURACY
            ),
        },
        "embedding": {
            "base": embedding.metrics["base"],
            "fine_tuned": embedding.metrics["fine_tuned"],
            "wall_s": embedding_s,
            "epochs": embedding_config.epochs,
        },
    }
    c, e = result["classifier"], result["embedding"]
    budget = "none" if budget_minutes is None else f"{budget_minutes:g} min"
    print(
        f"\nBANKING77 ({len(train):,} train / {len(test):,} test, {result['intents']} intents, "
        f"classifier training-time budget: {budget})"
    )
    steps = c["steps"] or {}
    print(
        f"classifier accuracy: frozen base + linear head {c['base_accuracy']:.4f}, fine-tuned "
        f"{c['accuracy']:.4f} (macro-F1 {c['macro_f1']:.4f}), {c['wall_s']:.0f} s, steps "
        f"{steps.get('run', '?')}/{steps.get('planned', '?')}"
    )
    print(
        f"classifier accuracy >= {BERT_BASE_ACCURACY} (BERT-base, Casanueva et al. 2020): "
        f"{'yes' if c['reaches_bert_base'] else 'no'}"
    )
    print(
        f"embedding recall@1 (same-intent, test among train): base "
        f"{e['base']['recall_at_1']:.4f}, fine-tuned {e['fine_tuned']['recall_at_1']:.4f}, "
        f"{e['wall_s']:.0f} s"
    )
    return result


def kind_figures(model: ClassifierModel | EmbeddingModel, wall_s: float) -> dict:
    return {
        "wall_s": wall_s,
        "timings": model.timings,
        "steps": model.steps.to_dict() if model.steps else None,
        "base": {k: v for k, v in model.metrics["base"].items() if isinstance(v, float)},
        "fine_tuned": {
            k: v for k, v in model.metrics["fine_tuned"].items() if isinstance(v, float)
        },
    }


def bench_customer30() -> dict:
    """The 30-intent customer's proxy (`customer_proxy.customer30`, from BANKING77): the
    classifier and embedding kinds with the default settings, as `mme-factory train` trains
    them (training-time budgets included), scored on the proxy's 900 test texts."""
    if not (BANKING77 / "train.csv").is_file():
        print("\n30-intent customer proxy: BANKING77 not present, skipped")
        return {"skipped": True}
    t = load_settings(environ={}).training
    train, test = customer30()
    data = CustomerDataset("customer30", "-", intents=train)
    seed_everything(t.seed, t.torch_threads)
    started = time.monotonic()
    classifier = finetune_classifier(data, t.classifier, t.held_out_fraction, t.seed, test)
    classifier_s = time.monotonic() - started
    seed_everything(t.seed, t.torch_threads)
    started = time.monotonic()
    embedding = finetune_embedding(data, t.embedding, t.held_out_fraction, t.seed, test)
    embedding_s = time.monotonic() - started
    total = classifier_s + embedding_s
    result = {
        "train_rows": len(train),
        "test_rows": len(test),
        "intents": train["intent"].nunique(),
        "classifier": kind_figures(classifier, classifier_s),
        "embedding": kind_figures(embedding, embedding_s),
        "total_s": total,
        "target_s": CUSTOMER30_TARGET_S,
        "within_target": total <= CUSTOMER30_TARGET_S,
    }
    c, e = result["classifier"], result["embedding"]
    print(
        f"\n30-intent customer proxy ({len(train):,} train / {len(test):,} test texts, "
        f"{result['intents']} BANKING77 intents), default settings: {total:.0f} s "
        f"(target {CUSTOMER30_TARGET_S} s: {'met' if result['within_target'] else 'missed'})"
    )
    print(
        f"classifier {c['wall_s']:.0f} s, accuracy {c['base']['accuracy']:.4f} -> "
        f"{c['fine_tuned']['accuracy']:.4f}, macro-F1 {c['base']['macro_f1']:.4f} -> "
        f"{c['fine_tuned']['macro_f1']:.4f}"
    )
    print(
        f"embedding {e['wall_s']:.0f} s, recall@1 {e['base']['recall_at_1']:.4f} -> "
        f"{e['fine_tuned']['recall_at_1']:.4f}, mrr {e['base']['mrr']:.4f} -> "
        f"{e['fine_tuned']['mrr']:.4f}"
    )
    return result


def bench_autocomplete(state_dir: Path, smollm2_steps: int) -> dict:
    settings = load_settings(environ={"MME_FACTORY_STATE_DIR": str(state_dir)})
    data = load_dataset(str(ACME), settings)
    t = settings.training
    candidates = {
        "compact": t.autocomplete,
        "smollm2": AutocompleteTraining(
            base_model="smollm2", max_steps=smollm2_steps, batch_size=8, eval_next_words=100
        ),
    }
    results = {}
    for name, config in candidates.items():
        seed_everything(t.seed)
        started = time.monotonic()
        model = finetune_autocomplete(
            data, config, t.held_out_fraction, t.seed, REPO / ".mme-factory" / "base-models"
        )
        tuned = model.metrics["fine_tuned"]
        results[name] = {
            "perplexity_per_word": tuned["perplexity_per_word"],
            "next_word_accuracy": tuned["next_word_accuracy"],
            "completion_16_tokens_ms": tuned["completion_ms"],
            "train_s": model.timings["train_s"],
            "wall_s": time.monotonic() - started,
            "parameters": sum(p.numel() for p in model.model.parameters()),
            "unigram": model.metrics["unigram"],
        }
        del model
    print(
        "\nautocomplete bases on the sample replies (unigram: "
        f"ppl/word {results['compact']['unigram']['perplexity_per_word']:.1f}, next-word "
        f"{results['compact']['unigram']['next_word_accuracy']:.3f})"
    )
    print(
        f"{'base':<9} {'params':>8} {'ppl/word':>9} {'next-word':>10} {'train s':>8} "
        f"{'16-tok ms':>10}"
    )
    for name, r in results.items():
        print(
            f"{name:<9} {r['parameters'] / 1e6:>7.1f}M {r['perplexity_per_word']:>9.2f} "
            f"{r['next_word_accuracy']:>10.3f} {r['train_s']:>8.1f} "
            f"{r['completion_16_tokens_ms']:>10.1f}"
        )
    return results


def minutes(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"minutes must be more than 0, got {text}")
    return value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sections", default="sample,customer30,banking77,autocomplete,taskmaster4"
    )
    parser.add_argument("--smollm2-steps", type=int, default=40)
    parser.add_argument(
        "--budget-minutes",
        type=minutes,
        default=6.0,
        help="taskmaster4: training-time budget of each base (training.autocomplete."
        "time_budget_minutes)",
    )
    parser.add_argument(
        "--taskmaster-rows", type=int, help="taskmaster4: a seeded sample of N train rows"
    )
    parser.add_argument(
        "--taskmaster-test-rows", type=int, help="taskmaster4: a seeded sample of N test rows"
    )
    parser.add_argument(
        "--eval-next-words",
        type=int,
        help="taskmaster4: next-word positions scored (default: training.autocomplete."
        "eval_next_words); each is a short generation, slow on a pretrained base",
    )
    parser.add_argument(
        "--latency-requests", type=int, default=20, help="taskmaster4: warm completions per base"
    )
    parser.add_argument(
        "--banking77-rows", type=int, help="banking77: seeded samples of N train and N test rows"
    )
    parser.add_argument(
        "--banking77-budget-minutes",
        type=minutes,
        help="banking77: the classifier's training-time budget (default: none, every epoch of "
        "the default recipe runs)",
    )
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    sections = args.sections.split(",")
    report: dict = {
        "benchmark": "training",
        "started_at": datetime.now(UTC).isoformat(),
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "processor": platform.machine(),
        },
        "versions": library_versions(),
        "inputs": {name: str(value) for name, value in vars(args).items()},
    }
    print(f"machine: {platform.platform()}, {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory() as scratch:
        state = Path(scratch)
        if "sample" in sections:
            report["sample"] = bench_sample(state / "sample")
        if "customer30" in sections:
            report["customer30"] = bench_customer30()
        if "banking77" in sections:
            report["banking77"] = bench_banking77(
                args.banking77_rows, args.banking77_budget_minutes
            )
        if "autocomplete" in sections:
            report["autocomplete"] = bench_autocomplete(state / "ac", args.smollm2_steps)
        if "taskmaster4" in sections:
            report["taskmaster4"] = bench_taskmaster4(
                state / "taskmaster4",
                args.budget_minutes,
                args.taskmaster_rows,
                args.taskmaster_test_rows,
                args.eval_next_words,
                args.latency_requests,
            )
    args.out.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = args.out / f"training-{stamp}.json"
    path.write_text(json.dumps(report, indent=2, default=str) + "\n", encoding="utf-8")
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
