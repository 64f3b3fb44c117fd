"""Where the local Prefect server listens (the embedded default; remote servers use
PREFECT_API_URL instead), the local worker's concurrency and the pipeline image's name."""

from __future__ import annotations

from pydantic import Field

from mme_factory.settings.section import SettingsSection


class PrefectSettings(SettingsSection):
    port: int = Field(4200, ge=1, le=65535)
    start_timeout_s: float = Field(120.0, gt=0)
    # Flow runs the local worker runs at once; each training run takes most of a CPU core.
    worker_limit: int = Field(2, ge=1)
    worker_start_timeout_s: float = Field(60.0, gt=0)
    # The production pool's image: `<repository>:<digest of its build inputs>` unless
    # pipeline_image names one built elsewhere.
    pipeline_image_repository: str = "mme-factory-pipeline"
    pipeline_image: str | None = None
