"""The summary table of `bench/run_all.py`: each benchmark's JSON beside the published case's
figures (measured on a T4 GPU, ml.g4dn instances).

Each row is (measure, published figure, figure before, figure here, benchmark). "Before" is what
`previous_figures.json` holds: the same measures taken on this machine before the current
serving and warm-up code (its `measured` field says when and how). A benchmark that failed or
was skipped gives "not run" in its rows rather than hiding them.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from planner.capacity import KindFootprint, plan_customers
from planner.instance_catalog import load_catalog

Results = dict[str, dict[str, Any]]
Row = tuple[str, str, str, str, str]
NOT_RUN = "not run"
PREVIOUS_FIGURES = Path(__file__).with_name("previous_figures.json")


def previous_figures() -> dict[str, str]:
    return json.loads(PREVIOUS_FIGURES.read_text(encoding="utf-8"))["figures"]


def _row(
    results: Results, name: str, measure: str, published: str, here: Callable[[dict], str]
) -> Row:
    before = previous_figures().get(measure, "-")
    if name not in results:
        return (measure, published, before, NOT_RUN, name)
    try:
        return (measure, published, before, here(results[name]), name)
    except (KeyError, IndexError, TypeError, ValueError, StopIteration) as error:
        return (measure, published, before, f"missing in JSON ({error!r})", name)


def _cold_start(data: dict) -> str:
    median = data["cold_start_s"]["median"]
    return (
        f"{median['total']:.1f} s (download {median['download']:.2f}, extract "
        f"{median['extract']:.2f}, load {median['load']:.2f}, first call "
        f"{median['first_inference']:.2f}); MiniLM, CPU"
    )


def _cached(data: dict) -> str:
    latency = data["latency"]
    sizes = sorted(latency, key=int)
    seconds = " / ".join(f"{latency[s]['triton']['p50_ms'] / 1000:.3f}" for s in sizes)
    return f"{seconds} s p50 at {' / '.join(sizes)} tokens (MiniLM, CPU)"


def _concurrent(data: dict) -> str:
    concurrent = data["concurrent"]
    return (
        f"{concurrent['triton']['p50_ms'] / 1000:.3f} s p50 "
        f"({concurrent['requests']} x {concurrent['tokens_each']} tokens)"
    )


def _autocomplete(data: dict) -> str:
    smoke = [s for s in data["summary"]["smoke"] if s["kind"] == "autocomplete"]
    return (
        f"{smoke[0]['warm_ms'] / 1000:.3f} s warm through the endpoint (up to 16 new tokens, CPU)"
    )


def _plan_kind(data: dict, instance: str, kind: str) -> dict:
    plan = next(p for p in data["plans"] if p["instance_type"] == instance)
    return next(k for k in plan["kinds"] if k["kind"] == kind)


def _footprint(data: dict, kind: str) -> dict:
    return next(f for f in data["footprints"] if f["kind"] == kind)


def _embedding_density(data: dict) -> str:
    kind = _plan_kind(data, "ml.g4dn.xlarge", "embedding")
    mib = _footprint(data, "embedding")["memory_mib"]
    return (
        f"{kind['customers_per_instance']} ({kind['targets_per_instance']} encoders) at "
        f"{mib:.0f} MiB each"
    )


def _autocomplete_density(data: dict) -> str:
    small = _plan_kind(data, "ml.g4dn.xlarge", "autocomplete")["targets_per_instance"]
    large = _plan_kind(data, "ml.g4dn.2xlarge", "autocomplete")["targets_per_instance"]
    mib = _footprint(data, "autocomplete")["memory_mib"]
    return (
        f"{small} on g4dn.xlarge, {large} on g4dn.2xlarge ({mib:.0f} MiB each; CUDA host "
        "memory not counted)"
    )


def _saving(data: dict) -> str:
    plan = next(
        p for p in data["plans"] if p["instance_type"] == "ml.g4dn.xlarge" and p["customers"] == 100
    )
    catalog = load_catalog()
    footprints = [KindFootprint(**f) for f in data["footprints"]]
    three = plan_customers(footprints, catalog.get("ml.g4dn.xlarge"), catalog, 100, replicas=3)
    saving_three = 1 - three.mme_monthly / plan["single_model_monthly"]
    return (
        f"{plan['saving']:.0%} for 100 customers on g4dn.xlarge; {saving_three:.0%} with every "
        "model on three MME instances against unreplicated single-model endpoints"
    )


def _service_overhead(data: dict) -> str:
    adds = data["warm_ms"]["embedding_30_tokens"]["service_adds_ms"]["p50_of_differences"]
    return f"{adds:.2f} ms p50 over calling Triton directly"


def _load_test(data: dict) -> str:
    latency, mib = data["latency_ms"], 1024**2
    return (
        f"{data['requests']} requests, {data['failed_requests']} failed, p50 "
        f"{latency['p50']:.0f} ms, p95 {latency['p95'] / 1000:.1f} s (goal "
        f"{data['p95_goal_ms'] / 1000:.0f} s), p99 {latency['p99'] / 1000:.1f} s; up to "
        f"{data['peak_loads_in_flight']} loads at once, {int(data['evictions'])} evictions; "
        f"peak PSS {data['peak_pss_bytes'] / mib:.0f} MiB (RSS "
        f"{data['peak_rss_bytes'] / mib:.0f}) against budget + one model "
        f"{data['memory_limit_bytes'] / mib:.0f} MiB"
    )


def _memory_accounting(data: dict) -> str:
    mib = 1024**2
    return (
        f"{data['processes']} processes, {data['inputs']['models']} models: machine grew "
        f"{data['machine_growth_bytes'] / mib:.0f} MiB; PSS {data['pss_growth_bytes'] / mib:.0f} "
        f"MiB ({data['pss_error']:.1%} off), RSS {data['rss_growth_bytes'] / mib:.0f} MiB "
        f"({data['rss_error']:.1%} off)"
    )


def _triton_gap(data: dict) -> str:
    latency = data["latency"]
    sizes = sorted(latency, key=int)
    gaps = " / ".join(f"{latency[s]['gap_p50_ms']:+.1f}" for s in sizes)
    shares = " / ".join(f"{latency[s]['gap_p50_pct']:+.0f} %" for s in sizes)
    return f"{gaps} ms ({shares}) at {' / '.join(sizes)} tokens; goal at most +5 % at 250 and 510"


def _fleet(data: dict) -> str:
    one, two, rerun = data["one_worker"], data["two_workers"], data["skip_rerun"]
    return (
        f"{data['inputs']['customers']} customers: {one['customers_per_hour']:.0f}/h with 1 "
        f"worker, {two['customers_per_hour']:.0f}/h with 2 ({data['speedup_two_over_one']:.2f}x "
        f"on 2 cores); a re-run skipping all {rerun['customers']} took {rerun['wall_s']:.1f} s"
    )


def _warmup(data: dict) -> str:
    summary = data["summary"]
    fits = summary.get("fits_only")
    if fits:
        return (
            f"{summary['models']} TargetModels, {fits['warmed']} fit: warming everything took "
            f"{summary['cold_wall_s']:.0f} s; warming what fits {fits['first_wall_s']:.0f} s, "
            f"then {fits['again_wall_s']:.1f} s with {fits['again_loads']} loads; "
            f"{fits['over_capacity']} over capacity; {fits['busy_loaded_after']} of "
            f"{fits['busy_models']} busy models still loaded"
        )
    parts = [
        f"{summary['models']} TargetModels on {summary['endpoints']} endpoints: all cold "
        f"{summary['cold_wall_s']:.0f} s at concurrency {summary['cold_concurrency']}"
    ]
    if summary.get("warm_wall_s") is not None:
        parts.append(f"all again {summary['warm_wall_s']:.1f} s")
    warm = [r for r in summary["scaling"] if r.get("state") == "warm"]
    if warm:
        largest = max(r["models"] for r in warm)
        by_concurrency = ", ".join(
            f"c{r['concurrency']} {r['wall_s']:.2f} s" for r in warm if r["models"] == largest
        )
        parts.append(f"{largest} loaded ones warm: {by_concurrency}")
    restarted = [r for r in summary["scaling"] if r.get("state") == "cold, restarted"]
    if restarted:
        cold = ", ".join(f"c{r['concurrency']} {r['wall_s']:.0f} s" for r in restarted)
        parts.append(f"{restarted[0]['models']} cold: {cold}")
    return "; ".join(parts)


def _onboarding(data: dict) -> str:
    summary = data["summary"]
    grouped: dict[str, float] = {}
    for stage, seconds in summary["stages"].items():
        action = stage.split(" ")[0]
        if action not in ("train", "package", "register", "smoke"):
            action = "other"
        grouped[action] = grouped.get(action, 0.0) + seconds
    stages = ", ".join(f"{action} {seconds:.0f} s" for action, seconds in grouped.items())
    return f"{summary['onboard_total_s']:.0f} s ({stages})"


def _quality(data: dict) -> str:
    parts = []
    for kind, figures in data["summary"]["training"].items():
        parts.append(
            f"{kind} {figures['metric']} {figures['baseline']:.3f} -> {figures['fine_tuned']:.3f}"
        )
    return "; ".join(parts) + f"; peak RSS {data['summary']['peak_rss_mb']:.0f} MB"


def _banking77(data: dict) -> str:
    c = data["banking77"]["classifier"]
    return (
        f"{c['accuracy'] * 100:.2f} % (frozen base + linear head "
        f"{c['base_accuracy'] * 100:.2f} %), {c['wall_s'] / 60:.1f} min"
    )


def _taskmaster4(data: dict) -> str:
    t = data["taskmaster4"]
    parts = []
    for base, r in t["bases"].items():
        parts.append(
            f"{base}: next word {r['next_word_accuracy']:.3f}, ppl/word "
            f"{r['perplexity_per_word']:.1f}, 16 tokens {r['served']['warm_ms']['p50']:.0f} ms"
        )
    unigram = next(iter(t["bases"].values()))["unigram"]
    return (
        f"{t['time_budget_minutes']:g} min each; "
        + "; ".join(parts)
        + f"; unigram {unigram['next_word_accuracy']:.3f}; default {t['choice']['base']}"
    )


def _training_speed(data: dict) -> str:
    before = data["summary"]["baseline"]["training_s"]
    after = data["summary"]["current"]["training_s"]
    return f"{after:.0f} s vs {before:.0f} s at {data['baseline']} ({data['ratio']:.2f}x the time)"


def summary_rows(results: Results) -> list[Row]:
    return [
        _row(
            results,
            "mme_local_latency",
            "cold start (first call loads the model)",
            "12.7 s",
            _cold_start,
        ),
        _row(
            results,
            "triton_embedding",
            "cached inference, 30 / 250 / 550 tokens",
            "0.03 / 0.05 / 0.13 s",
            _cached,
        ),
        _row(results, "triton_embedding", "5 concurrent requests", "0.12 s", _concurrent),
        _row(
            results,
            "pipeline",
            "autocomplete latency through the MME",
            "0.24-0.32 s (0.74-0.80 s before)",
            _autocomplete,
        ),
        _row(
            results,
            "plan",
            "embedding models per ml.g4dn.xlarge at 80 %",
            "12 (24 encoders)",
            _embedding_density,
        ),
        _row(
            results,
            "plan",
            "autocomplete models per instance",
            "4 on g4dn.xlarge, 10 on g4dn.2xlarge",
            _autocomplete_density,
        ),
        _row(
            results,
            "plan",
            "hosting cost saved",
            "66-80 % (about 43 % with three replicas)",
            _saving,
        ),
        _row(
            results,
            "mme_local_latency",
            "endpoint service overhead, warm call",
            "-",
            _service_overhead,
        ),
        _row(results, "mme_local_load", "20 clients, 6 models, memory for 3", "-", _load_test),
        _row(
            results,
            "memory_accounting",
            "memory counted for an endpoint's models",
            "-",
            _memory_accounting,
        ),
        _row(
            results,
            "triton_embedding",
            "server path over in-process TorchScript",
            "-",
            _triton_gap,
        ),
        _row(results, "warmup_scale", "hourly warm-up at scale", "-", _warmup),
        _row(results, "fleet", "fleet of customers", "-", _fleet),
        _row(results, "pipeline", "onboard-customer, sample customer", "-", _onboarding),
        _row(results, "pipeline", "fine-tuned vs base, held out", "-", _quality),
        _row(
            results,
            "training",
            "BANKING77 test accuracy, 22M-parameter encoder on CPU (BERT-base: 93.7 %)",
            "-",
            _banking77,
        ),
        _row(results, "training", "autocomplete bases on Taskmaster-4 replies", "-", _taskmaster4),
        _row(results, "training_speed", "sample customer's training stage", "-", _training_speed),
    ]
