"""The printed table of `bench/bench_pipeline.py`, from its results."""

from __future__ import annotations

from typing import Any


def model_label(target_model: str) -> str:
    """`acme/embedding-query/v1.tar.gz` -> `embedding-query`."""
    return target_model.split("/")[1]


def table_rows(results: dict[str, Any]) -> list[tuple[str, str]]:
    summary = results["summary"]
    machine = results["machine"]
    rows = [
        (
            "machine",
            f"{machine['cpu']}, {machine['cores']} cores, {machine['memory_gib']} GiB, "
            f"load {machine['load_average_at_start'][0]:.2f} at start",
        ),
        (
            "onboard-customer total",
            f"{summary['onboard_total_s']:7.1f} s  flow run start to end; "
            f"the call took {summary['onboard_call_s']:.1f} s",
        ),
    ]
    smoke = {model_label(s["target_model"]): s for s in summary["smoke"]}
    for stage, seconds in summary["stages"].items():
        detail = stage_detail(stage, summary, smoke)
        rows.append((f"  {stage}", f"{seconds:7.1f} s  {detail}".rstrip()))
    rows.append(("peak RSS of the flow process", f"{summary['peak_rss_mb']:.0f} MB"))
    rows.append(
        (
            "warmup flow",
            f"{summary['warmup_wall_s']:7.1f} s  call {summary['warmup_call_s']:.1f} s; "
            + ", ".join(
                f"{model_label(w['target_model'])} {w['state']}" for w in summary["warmup"]
            ),
        )
    )
    serving = summary["serving"]
    rows.append(("mme_local + Triton RSS", f"{serving['mme_local_and_triton_rss_mb']:.0f} MB"))
    for endpoint in serving["endpoints"].values():
        for model in endpoint["models"]:
            rows.append(
                (
                    f"  load {model_label(model['target_model'])}",
                    f"download {model.get('download_s', 0):.2f} + extract "
                    f"{model.get('extract_s', 0):.2f} + load {model.get('load_s', 0):.2f} s, "
                    f"{model['memory_mb']:.0f} MB",
                )
            )
    return rows


def stage_detail(stage: str, summary: dict[str, Any], smoke: dict[str, dict]) -> str:
    action, _, subject = stage.partition(" ")
    if action == "train" and subject in summary["training"]:
        kind = summary["training"][subject]
        return (
            f"train {kind['train_s']:.1f} s, export {kind.get('export_s', 0):.1f} s; "
            f"{kind['metric']} {kind['baseline_name']} {kind['baseline']:.3f} -> "
            f"{kind['fine_tuned']:.3f}"
        )
    if action == "smoke" and subject in smoke:
        return f"cold {smoke[subject]['cold_ms']:.0f} ms, warm {smoke[subject]['warm_ms']:.0f} ms"
    return ""
