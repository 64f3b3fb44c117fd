"""What the whole suite shares: the tiers, sample data, settings and a real S3 API (moto server).

Every test lives in one tier folder, which sets its marker: `tests/unit` (no process, no network),
`tests/component` (one part against the real thing: Triton, moto's server, a Prefect API) and
`tests/e2e` (the whole local stack). The slow tiers run first, so under pytest-xdist the longest
modules start while the short ones fill the gaps.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from prefect.settings import PREFECT_API_URL
from prefect.testing.utilities import prefect_test_harness

from mme_factory.settings import Settings, load_settings
from test_support.leftover_processes import kill_leftovers, mark_this_session
from test_support.paths import ACME, REPO
from test_support.prefect_api import drain_prefect_services
from test_support.servers import MotoServer
from test_support.tiny_base_models import write_tiny_encoder

TIERS = ("e2e", "component", "unit")
TESTS = REPO / "tests"


def tier_of(path: Path) -> str | None:
    relative = path.resolve().relative_to(TESTS)
    return relative.parts[0] if len(relative.parts) > 1 and relative.parts[0] in TIERS else None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    outside = sorted({str(item.path) for item in items if tier_of(item.path) is None})
    if outside:
        raise pytest.UsageError(f"tests outside a tier folder ({', '.join(TIERS)}): {outside}")
    for item in items:
        item.add_marker(getattr(pytest.mark, str(tier_of(item.path))))
    items.sort(key=lambda item: TIERS.index(str(tier_of(item.path))))


@pytest.fixture(scope="session", autouse=True)
def no_process_left_running(worker_id: str) -> Iterator[None]:
    """Fails the session when a process it started outlives every fixture (and kills it)."""
    mark = mark_this_session(worker_id)
    yield
    leftovers = kill_leftovers(mark)
    assert not leftovers, "processes the tests left running (now killed):\n  " + "\n  ".join(
        leftovers
    )


@pytest.fixture(scope="module", autouse=True)
def prefect_services_drained() -> Iterator[None]:
    """Each module's Prefect events and logs are delivered before the next module starts."""
    yield
    drain_prefect_services()


@pytest.fixture
def acme_copy(tmp_path: Path) -> Path:
    """A writable copy of the sample customer, for tests that break it."""
    return Path(shutil.copytree(ACME, tmp_path / "acme"))


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(environ={"MME_FACTORY_STATE_DIR": str(tmp_path / "state")})


@pytest.fixture(scope="session")
def tiny_encoder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random BERT encoder and its tokenizer, written once per session; read-only."""
    return write_tiny_encoder(tmp_path_factory.mktemp("tiny-encoder"))


@pytest.fixture(scope="session")
def prefect_api_url() -> Iterator[str]:
    """One Prefect API (a temporary server and database) for this worker's whole session.

    Modules that run flows share it; each reads back only the runs it started (by flow run id,
    or as a difference before and after), so what other modules left there never counts.
    """
    with prefect_test_harness(server_startup_timeout=120):
        yield str(PREFECT_API_URL.value())


@pytest.fixture(scope="session")
def moto_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    """moto's S3-compatible server on a free loopback port, stopped by PID at the end."""
    server = MotoServer(tmp_path_factory.mktemp("moto") / "moto.log")
    server.start()
    try:
        yield server
    finally:
        server.stop()
