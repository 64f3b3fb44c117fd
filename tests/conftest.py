"""Fixtures shared by the whole suite: sample data, settings, and a real S3 API (moto server)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from mme_factory.settings import Settings, load_settings
from test_support.servers import MotoServer

REPO = Path(__file__).resolve().parent.parent
ACME = REPO / "examples" / "customers" / "acme"


@pytest.fixture
def acme_copy(tmp_path: Path) -> Path:
    """A writable copy of the sample customer, for tests that break it."""
    return Path(shutil.copytree(ACME, tmp_path / "acme"))


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(environ={"MME_FACTORY_STATE_DIR": str(tmp_path / "state")})


@pytest.fixture(scope="session")
def moto_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    """moto's S3-compatible server on a free loopback port, stopped by PID at the end."""
    server = MotoServer(tmp_path_factory.mktemp("moto") / "moto.log")
    server.start()
    try:
        yield server
    finally:
        server.stop()
