"""Where the local Prefect server listens (the embedded default); remote servers use
PREFECT_API_URL instead."""

from __future__ import annotations

from pydantic import Field

from mme_factory.settings.section import SettingsSection


class PrefectSettings(SettingsSection):
    port: int = Field(4200, ge=1, le=65535)
    start_timeout_s: float = Field(120.0, gt=0)
