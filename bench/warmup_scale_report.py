"""The printed table of `bench/bench_warmup_scale.py`, from its results."""

from __future__ import annotations

from typing import Any

GIB = 1024**3
MIB = 1024**2


def table(results: dict[str, Any]) -> list[tuple[str, str]]:
    machine, s = results["machine"], results["summary"]
    rows = [
        ("machine", f"{machine['cpu']}, {machine['cores']} cores, {machine['memory_gib']} GiB"),
        ("models / endpoints", f"{s['models']} / {', '.join(s['endpoint_names'])}"),
        ("budget per endpoint", f"{results['inputs']['budget_bytes'] / GIB:.2f} GiB"),
        ("after the cold pass", "loaded / memory per model / Triton tree RSS / private"),
    ]
    for endpoint, memory in results["memory_after_cold_pass"].items():
        rows.append(
            (
                f"  {endpoint}",
                f"{memory['loaded']} / {memory['memory_per_model_median_bytes'] / MIB:.0f} MiB / "
                f"{memory['tree_rss_bytes'] / GIB:.2f} GiB / "
                f"{memory['tree_uss_bytes'] / GIB:.2f} GiB",
            )
        )
    fits = s["fits_only"]
    lowest = results["lowest_available_memory_bytes"] / GIB
    rows += [
        ("evictions in the cold pass", str(s["cold_pass_evictions"])),
        ("warm everything: failures", str(s["warm_everything_failures"])),
        ("least memory available", f"{lowest:.1f} GiB"),
        (
            "fits only: warmed / over capacity",
            f"{fits['warmed']} / {fits['over_capacity']}; second pass: {fits['again_cold']} cold, "
            f"{fits['again_loads']} loads, {fits['again_evictions']} evictions",
        ),
        (
            "models with traffic, loaded after",
            f"{fits['busy_loaded_after']} of {fits['busy_models']}",
        ),
        (
            "instances needed",
            ", ".join(f"{e}: {n}" for e, n in fits["instances_needed"].items()) or "-",
        ),
        (
            "models x concurrency, state",
            "wall s / p50 ms / p95 ms / cold / over capacity / failures / dropped",
        ),
    ]
    passes = results["passes"]
    for row in [passes["cold"], passes["warm_all"], *passes["fits_only"], *passes["warm_subsets"]]:
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
        f"{row['over_capacity']} / {row['failures']} / {row['connections_discarded']}",
    )
