"""Prefect processes started from the checkout read prefect.toml: no telemetry, patient SQLite."""

from __future__ import annotations

import os
import subprocess
import sys

from test_support.paths import REPO

ROOT = REPO


def test_prefect_started_here_sends_no_telemetry_and_waits_for_sqlite_locks():
    environ = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_SERVER_")}
    read = (
        "from prefect.settings import get_current_settings as current; s = current().server; "
        "print(s.analytics_enabled, s.database.timeout)"
    )
    done = subprocess.run(
        [sys.executable, "-c", read],
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert done.stdout.split() == ["False", "60.0"]
