"""`python -m mme_local [--settings FILE]`: serve the embedded SageMaker MME in the foreground."""

from __future__ import annotations

import argparse

import uvicorn

from mme_factory.settings import load_settings
from mme_local.service import MmeLocalService


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m mme_local")
    parser.add_argument("--settings", help="settings YAML (default: $MME_FACTORY_SETTINGS)")
    args = parser.parse_args()
    settings = load_settings(args.settings)
    service = MmeLocalService(settings)
    uvicorn.run(
        service.app(),
        host=settings.mme_local.host,
        port=settings.mme_local.port,
        log_level="warning",
        access_log=False,
    )


if __name__ == "__main__":
    main()
