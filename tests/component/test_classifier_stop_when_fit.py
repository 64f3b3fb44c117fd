"""The classifier stops after the first epoch that classifies every training text right."""

from __future__ import annotations

import math

import pandas as pd

from mme_factory.settings.training import ClassifierTraining
from tasks.data.training_data import CustomerDataset
from tasks.training.classifier import finetune_classifier
from tasks.training.epoch_fit import FIT

EPOCHS = 40
BATCH_SIZE = 8


def two_intents() -> CustomerDataset:
    rows = [(f"please refund order {n}", "refund") for n in range(30)]
    rows += [(f"where is parcel {n} now", "tracking") for n in range(30)]
    return CustomerDataset("fit", "-", intents=pd.DataFrame(rows, columns=["text", "intent"]))


def config(tiny_encoder, stop_when_fit: bool) -> ClassifierTraining:
    return ClassifierTraining(
        base_model=str(tiny_encoder),
        epochs=EPOCHS,
        batch_size=BATCH_SIZE,
        learning_rate=1e-3,
        min_accuracy=0,
        train_token_embeddings=True,
        stop_when_fit=stop_when_fit,
        time_budget_minutes=None,
    )


def test_an_epoch_with_every_text_right_ends_training(tiny_encoder):
    model = finetune_classifier(two_intents(), config(tiny_encoder, True), 0.2, 13)
    batches_per_epoch = math.ceil(48 / BATCH_SIZE)
    assert model.steps.stopped_because == FIT
    assert not model.steps.stopped_by_budget
    assert model.steps.run < model.steps.planned == EPOCHS * batches_per_epoch
    assert model.steps.run % batches_per_epoch == 0
    assert model.metrics["fine_tuned"]["accuracy"] == 1.0


def test_without_stop_when_fit_every_planned_epoch_runs(tiny_encoder):
    model = finetune_classifier(two_intents(), config(tiny_encoder, False), 0.2, 13)
    assert model.steps.run == model.steps.planned
    assert model.steps.stopped_because is None
