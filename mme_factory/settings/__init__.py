"""One typed settings object for the whole project, loaded from defaults, a YAML file and env."""

from mme_factory.settings.loader import (
    ENV_PREFIX,
    SETTINGS_FILE_VARIABLE,
    EndpointSettings,
    MemorySettings,
    MmeLocalSettings,
    Settings,
    TritonSettings,
    ValidationSettings,
    load_settings,
)

__all__ = [
    "ENV_PREFIX",
    "SETTINGS_FILE_VARIABLE",
    "EndpointSettings",
    "MemorySettings",
    "MmeLocalSettings",
    "Settings",
    "TritonSettings",
    "ValidationSettings",
    "load_settings",
]
