"""One trained run of every kind of tiny model, shared by the tests that only read it.

Training is the slowest thing the component tier does, and several tests need the same result.
The run is kept in pytest's cache under a key made of what decides it (the data, the settings,
the base model's files, the training code and the torch version), so a rerun in which none of
these changed reads it back instead of training again.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

import torch

from test_support.paths import REPO

TRAINING_CODE = ("tasks/training", "tasks/data", "mme_factory/settings")


def files_sha256(paths: Iterable[Path], root: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in paths if p.is_file()):
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def training_key(data: Path, encoder: Path, environ: dict[str, str]) -> str:
    """The key of a training: equal keys train equal runs (the pipeline seeds everything)."""
    code = [p for folder in TRAINING_CODE for p in (REPO / folder).rglob("*.py")]
    settings = {name: value for name, value in environ.items() if str(encoder) not in value}
    parts = [
        files_sha256(data.rglob("*"), data),
        files_sha256(encoder.rglob("*"), encoder),
        files_sha256(code, REPO),
        repr(sorted(settings.items())),
        torch.__version__,
    ]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:24]


def cached_run(cache_root: Path, key: str, train: Callable[[Path], None]) -> Path:
    """The state directory holding the run for `key`, trained into it by `train` when absent.

    Training writes to a private directory that is renamed into place whole, so a run cut short
    is never read back, and of two sessions training the same key at once one run is kept.
    """
    state = cache_root / key / "state"
    if (state / "complete").is_file():
        return state
    state.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="training-", dir=cache_root))
    try:
        train(scratch / "state")
        (scratch / "state" / "complete").touch()
        try:
            os.rename(scratch / "state", state)
        except OSError:  # another session put the same run there first
            if not (state / "complete").is_file():
                raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return state
