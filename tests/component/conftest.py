"""The component tier: one part against the real thing (Triton, moto's server, a Prefect API)."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from mme_factory.model_kinds import ModelKind
from mme_factory.settings import Settings, load_settings
from tasks.training.train_customer import train_customer
from test_support.paths import ACME
from test_support.tiny_base_models import tiny_training_environ
from test_support.trained_runs import cached_run, training_key


@dataclass(frozen=True)
class TrainedRun:
    path: Path
    settings: Settings
    data: Path


def cut_to_a_quarter(customer: Path) -> Path:
    """The sample customer cut to a quarter, so tiny models train in seconds."""
    intents = pd.read_csv(customer / "intents.csv", dtype=str)
    intents.groupby("intent").head(24).to_csv(customer / "intents.csv", index=False)
    replies = (customer / "replies.jsonl").read_text(encoding="utf-8").splitlines(True)
    (customer / "replies.jsonl").write_text("".join(replies[:300]), encoding="utf-8")
    return customer


@pytest.fixture
def small_acme(acme_copy: Path) -> Path:
    return cut_to_a_quarter(acme_copy)


@pytest.fixture(scope="session")
def trained_tiny_run(
    tiny_encoder: Path, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> TrainedRun:
    """Every kind trained once on the cut sample customer; read-only for the tests that use it."""
    data = cut_to_a_quarter(Path(shutil.copytree(ACME, tmp_path_factory.mktemp("data") / "acme")))
    environ = tiny_training_environ(tiny_encoder)

    def train(state: Path) -> None:
        settings = load_settings(environ={"MME_FACTORY_STATE_DIR": str(state), **environ})
        train_customer("acme", str(data), settings, list(ModelKind))

    cache_root = request.config.cache.mkdir("tiny-training")
    state = cached_run(cache_root, training_key(data, tiny_encoder, environ), train)
    settings = load_settings(environ={"MME_FACTORY_STATE_DIR": str(state), **environ})
    (run,) = (state / "runs" / "acme").iterdir()
    return TrainedRun(run, settings, data)
