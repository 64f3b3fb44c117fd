"""Each kind stops training within its time budget and is still evaluated and exported."""

from __future__ import annotations

import pytest

from mme_factory.model_kinds import ModelKind
from mme_factory.settings import load_settings
from tasks.data.training_data import load_dataset
from tasks.training.kind_training import TRAINING
from test_support.tiny_base_models import tiny_training_environ

BUDGET_MINUTES = 0.1  # 6 s


@pytest.mark.parametrize("kind", list(ModelKind), ids=str)
def test_a_kind_with_far_more_epochs_than_fit_stops_in_time_evaluated_and_exported(
    kind, tmp_path, tiny_encoder, acme_copy
):
    prefix = f"MME_FACTORY_TRAINING__{kind.name}__"
    environ = {
        "MME_FACTORY_STATE_DIR": str(tmp_path / "state"),
        **tiny_training_environ(tiny_encoder),
        prefix + "EPOCHS": "500",
        prefix + "TIME_BUDGET_MINUTES": str(BUDGET_MINUTES),
    }
    if kind is ModelKind.CLASSIFIER:  # the budget, not a complete fit, must end this run
        environ[prefix + "STOP_WHEN_FIT"] = "false"
    settings = load_settings(environ=environ)
    data = load_dataset(str(acme_copy), settings)
    steps = TRAINING[kind]
    trained = steps.train(data, settings)

    assert trained.steps.stopped_by_budget
    assert 1 <= trained.steps.run < trained.steps.planned
    assert trained.steps.budget_s == pytest.approx(BUDGET_MINUTES * 60)
    # The budget bounds the steps (loading the base may already take it all on a busy machine);
    # bounded loosely, as a shared machine is noisy, while 500 epochs would take many minutes.
    assert trained.timings["train_s"] < BUDGET_MINUTES * 60 + 10
    assert "fine_tuned" in trained.metrics
    export = steps.export(trained, tmp_path / "export", settings)
    assert export


def test_no_budget_runs_every_planned_step(tmp_path, tiny_encoder, acme_copy):
    environ = {
        "MME_FACTORY_STATE_DIR": str(tmp_path / "state"),
        **tiny_training_environ(tiny_encoder),
        "MME_FACTORY_TRAINING__CLASSIFIER__EPOCHS": "1",
        "MME_FACTORY_TRAINING__CLASSIFIER__TIME_BUDGET_MINUTES": "null",
    }
    settings = load_settings(environ=environ)
    assert settings.training.classifier.time_budget_minutes is None
    trained = TRAINING[ModelKind.CLASSIFIER].train(load_dataset(str(acme_copy), settings), settings)
    assert trained.steps.run == trained.steps.planned
    assert trained.steps.budget_s is None
    assert not trained.steps.stopped_by_budget
