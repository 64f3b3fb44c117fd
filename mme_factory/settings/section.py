"""The base of every settings section: unknown keys are refused and values never change."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class SettingsSection(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
