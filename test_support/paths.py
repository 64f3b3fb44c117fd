"""Where the repository and its sample customer are, for tests and their helpers."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
ACME = REPO / "examples" / "customers" / "acme"
