"""The hourly `warmup` flow: invoke the registered models that fit, so that none of them is cold."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from prefect import flow

from flows.flow_settings import flow_settings
from mme_factory.errors import MmeFactoryError
from tasks.deployment import WarmupStatus, warm_models_task


class WarmupFailed(MmeFactoryError):
    """A registered model did not answer its warm-up call, or did not fit its endpoint."""


@flow(name="warmup", log_prints=True)
def warmup(
    concurrency: int | None = None,
    settings_file: str | None = None,
    overrides: dict[str, str] | None = None,
) -> list[dict[str, Any]]:
    """Warm every registered TargetModel that fits; fail the run if any failed or did not fit."""
    settings = flow_settings(settings_file, overrides)
    warmup = warm_models_task(settings, concurrency or settings.sagemaker.warmup_concurrency)
    warmed = [r for r in warmup.results if r.status == WarmupStatus.OK]
    failed = [r for r in warmup.results if r.status == WarmupStatus.FAILED]
    print(f"warmed {len(warmed)} of {len(warmup.results)} models")
    problems = [f"{r.target_model} on {r.endpoint}: {r.error}" for r in failed]
    if problems or warmup.shortfalls:
        raise WarmupFailed("; ".join([*warmup.shortfalls, *problems]))
    return [asdict(r) for r in warmup.results]
