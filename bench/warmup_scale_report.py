"""The printed table of `bench/bench_warmup_scale.py`, from its results."""

from __future__ import annotations

from typing import Any

GIB = 1024**3


def table(results: dict[str, Any]) -> list[tuple[str, str]]:
    machine, s = results["machine"], results["summary"]
    rows = [
        ("machine", f"{machine['cpu']}, {machine['cores']} cores, {machine['memory_gib']} GiB"),
        ("models / endpoints", f"{s['models']} / {', '.join(s['endpoint_names'])}"),
        ("budget per endpoint", f"{results['inputs']['budget_bytes'] / GIB:.1f} GiB resident"),
        ("after the cold pass", "loaded / RSS per model / Triton tree RSS / private"),
    ]
    for endpoint, memory in results["memory_after_cold_pass"].items():
        rows.append(
            (
                f"  {endpoint}",
                f"{memory['loaded']} / {memory['rss_per_model_median_bytes'] / 2**20:.0f} MiB / "
                f"{memory['tree_rss_bytes'] / GIB:.2f} GiB / "
                f"{memory['tree_uss_bytes'] / GIB:.2f} GiB",
            )
        )
    lowest = results["lowest_available_memory_bytes"] / GIB
    rows += [
        ("evictions in the cold pass", str(s["cold_pass_evictions"])),
        ("least memory available", f"{lowest:.1f} GiB"),
        ("models x concurrency, state", "wall s / p50 ms / p95 ms / cold / failures / dropped"),
    ]
    for row in [results["passes"]["cold"], *results["passes"]["warm_subsets"]]:
        rows.append(pass_row(row))
    for row in [results["passes"]["warm_all"], *results["passes"].get("cold_after_restart", [])]:
        if row is not None:
            rows.append(pass_row(row))
    phases = results["phases_s"]
    rows.append(
        (
            "build / register / total",
            f"{phases['build']} / {phases['register']} / {phases['total']} s",
        )
    )
    return rows


def pass_row(row: dict[str, Any]) -> tuple[str, str]:
    if "wall_s" not in row:
        return (f"  {row['models']}, {row['state']}", "-")
    return (
        f"  {row['models']} x {row['concurrency']}, {row['state']}",
        f"{row['wall_s']:.2f} / {row['p50_ms']:.0f} / {row['p95_ms']:.0f} / {row['cold']} / "
        f"{row['failures']} / {row['connections_discarded']}",
    )
