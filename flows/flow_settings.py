"""Settings for a flow run: the settings file plus overrides given as flow parameters."""

from __future__ import annotations

import logging
import os

from mme_factory.settings import ENV_PREFIX, Settings, load_settings


def flow_settings(settings_file: str | None, overrides: dict[str, str] | None) -> Settings:
    """`overrides` use dotted names, e.g. {"training.classifier.epochs": "2"}."""
    logging.getLogger("mme_factory").setLevel(logging.INFO)
    environ = dict(os.environ)
    for name, value in (overrides or {}).items():
        environ[ENV_PREFIX + name.replace(".", "__").upper()] = str(value)
    return load_settings(settings_file, environ)
