"""The hourly `warmup` flow: invoke every registered model so that none is cold."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from prefect import flow

from flows.flow_settings import flow_settings
from mme_factory.errors import MmeFactoryError
from tasks.deployment import warm_models_task


class WarmupFailed(MmeFactoryError):
    """At least one registered model did not answer its warm-up call."""


@flow(name="warmup", log_prints=True)
def warmup(
    concurrency: int | None = None,
    settings_file: str | None = None,
    overrides: dict[str, str] | None = None,
) -> list[dict[str, Any]]:
    """Warm every registered TargetModel; fail the run if any model failed."""
    settings = flow_settings(settings_file, overrides)
    results = warm_models_task(settings, concurrency or settings.sagemaker.warmup_concurrency)
    failed = [r for r in results if r.status != "ok"]
    print(f"warmed {len(results) - len(failed)} of {len(results)} models")
    if failed:
        raise WarmupFailed(
            ", ".join(f"{r.target_model} on {r.endpoint}: {r.error}" for r in failed)
        )
    return [asdict(r) for r in results]
