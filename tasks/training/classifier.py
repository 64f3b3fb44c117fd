"""Fine-tune an intent classifier: the base encoder plus a linear head, trained end to end.

Its baseline is the same encoder frozen, with only a linear head trained on it: a complete
classifier the gate compares with on a first onboarding and serves when the fine-tuned one loses.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np
import pandas as pd
import torch

from mme_factory.records import StepsSummary
from mme_factory.settings.training import ClassifierTraining
from tasks.data.training_data import CustomerDataset, check_intents, split_labelled
from tasks.training.base_models import load_encoder
from tasks.training.batching import length_bucketed_batches
from tasks.training.budgeted_optimizer import BudgetedOptimizer
from tasks.training.encoders import (
    IntentClassifier,
    SentenceEncoder,
    embed,
    trainable_parameters,
)
from tasks.training.epoch_fit import FIT, EpochFit
from tasks.training.frozen_layers import EncoderInputs
from tasks.training.held_out import HeldOutScores, row_key
from tasks.training.metrics import classification_metrics
from tasks.training.step_budget import StepBudget, budgeted_batches
from tasks.training.token_batches import TokenizedTexts
from tasks.training.trained_model import phase_timings

HEAD_EPOCHS = 200
# The final evaluation's time is estimated by the baseline's on the same texts, with room to spare.
EVALUATION_MARGIN = 1.5


@dataclass
class ClassifierModel:
    classifier: IntentClassifier
    tokenizer: Any
    labels: list[str]
    config: ClassifierTraining
    metrics: dict[str, dict[str, object]]
    held_out: pd.DataFrame
    timings: dict[str, float] = field(default_factory=dict)
    final_loss: float | None = None
    steps: StepsSummary | None = None
    # The base: the frozen encoder with the linear head trained on it, a complete classifier.
    base_classifier: IntentClassifier | None = None
    held_out_scores: HeldOutScores | None = None

    def predict(self, texts: list[str]) -> list[str]:
        logits = embed(self.classifier, self.tokenizer, texts, self.config.max_length)
        return [self.labels[i] for i in logits.argmax(dim=1).tolist()]

    def as_base(self) -> ClassifierModel:
        """The same model with the base classifier in place of the fine-tuned one."""
        if self.base_classifier is None:
            raise ValueError("the model kept no base classifier")
        return dataclasses.replace(self, classifier=self.base_classifier)


def held_out_examples(held: pd.DataFrame) -> list[dict[str, str]]:
    return [
        {"text": str(text), "intent": str(intent), "row": row_key(str(text))}
        for text, intent in zip(held["text"], held["intent"], strict=True)
    ]


def score_examples(model: ClassifierModel, examples: list[dict[str, str]]) -> list[float]:
    """1.0 for each example whose intent the model predicts, else 0.0."""
    predicted = model.predict([example["text"] for example in examples])
    return [float(p == e["intent"]) for p, e in zip(predicted, examples, strict=True)]


def right_or_wrong(truth: list[str], predicted: list[str]) -> list[float]:
    return [float(t == p) for t, p in zip(truth, predicted, strict=True)]


def train_linear_head(
    features: torch.Tensor, targets: torch.Tensor, num_labels: int, seed: int
) -> torch.nn.Linear:
    """A linear head on frozen features (full-batch Adam): the base model's classifier."""
    torch.manual_seed(seed)
    head = torch.nn.Linear(features.shape[1], num_labels)
    optimizer = torch.optim.Adam(head.parameters(), lr=1e-2)
    for _ in range(HEAD_EPOCHS):
        loss = torch.nn.functional.cross_entropy(head(features * 20), targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return head


def base_classifier(
    encoder: SentenceEncoder, head: torch.nn.Linear, num_labels: int
) -> IntentClassifier:
    """The encoder with the head trained on its frozen features (which saw them times 20)."""
    classifier = IntentClassifier(encoder, num_labels)
    with torch.no_grad():
        classifier.head.weight.copy_(head.weight * 20)
        classifier.head.bias.copy_(head.bias)
    return classifier.eval()


def train_classifier(
    classifier: IntentClassifier,
    tokenizer: Any,
    texts: list[str],
    targets: torch.Tensor,
    config: ClassifierTraining,
    seed: int,
    budget: StepBudget,
) -> float | None:
    optimizer = torch.optim.AdamW(
        [
            {
                "params": trainable_parameters(
                    classifier.encoder, config.train_token_embeddings, config.frozen_layers
                ),
                "lr": config.learning_rate,
            },
            {"params": classifier.head.parameters(), "lr": config.head_learning_rate},
        ]
    )
    steps = BudgetedOptimizer("classifier", optimizer, budget)
    rng = np.random.default_rng(seed)
    tokens = TokenizedTexts.of(tokenizer, texts, config.max_length)
    inputs = EncoderInputs.of(classifier.encoder, tokens, config.frozen_layers)
    classifier.train()
    epoch = partial(length_bucketed_batches, tokens.lengths(), config.batch_size, rng)
    fit = EpochFit(len(texts))
    for batch in budgeted_batches(budget, epoch):
        logits = classifier.head(inputs.encode(classifier.encoder, batch))
        loss = torch.nn.functional.cross_entropy(
            logits, targets[batch], label_smoothing=config.label_smoothing
        )
        right = int((logits.argmax(dim=1) == targets[batch]).sum())
        fitted = fit.add(len(batch), right) and config.stop_when_fit
        steps.step(loss, classifier.parameters(), stop_because=FIT if fitted else None)
    classifier.eval()
    return steps.final_loss


def finetune_classifier(
    data: CustomerDataset,
    config: ClassifierTraining,
    fraction: float,
    seed: int,
    held_out: pd.DataFrame | None = None,
) -> ClassifierModel:
    """Train on intents.csv; held-out accuracy, macro-F1, per-intent table: base and tuned."""
    started = time.monotonic()
    intents = check_intents(data.intents)
    if held_out is None:
        train, held = split_labelled(intents, "intent", fraction, seed)
    else:  # an evaluation set kept apart by the caller (e.g. a benchmark's test split)
        train, held = intents, held_out
    labels = sorted(intents["intent"].unique())
    index = {label: i for i, label in enumerate(labels)}
    targets = torch.tensor([index[label] for label in train["intent"]])
    transformer, tokenizer = load_encoder(config.base_model)
    encoder = SentenceEncoder(transformer).eval()

    texts, held_texts = list(train["text"]), list(held["text"])
    head = train_linear_head(
        embed(encoder, tokenizer, texts, config.max_length) * 1.0, targets, len(labels), seed
    )
    held_embedded_at = time.monotonic()
    with torch.inference_mode():
        base_logits = head(embed(encoder, tokenizer, held_texts, config.max_length) * 20)
    # The final evaluation embeds the same held-out texts once more.
    evaluation_s = time.monotonic() - held_embedded_at
    base_predicted = [labels[i] for i in base_logits.argmax(dim=1).tolist()]
    base_metrics = classification_metrics(list(held["intent"]), base_predicted, labels)

    torch.manual_seed(seed)
    classifier = base_classifier(encoder.copy(), head, len(labels))
    trained_at = time.monotonic()
    budget = StepBudget.from_minutes(
        config.epochs * math.ceil(len(texts) / config.batch_size),
        config.time_budget_minutes,
        started,
        reserve_s=evaluation_s * EVALUATION_MARGIN,
    )
    final_loss = train_classifier(classifier, tokenizer, texts, targets, config, seed, budget)
    evaluated_at = time.monotonic()
    model = ClassifierModel(
        classifier, tokenizer, labels, config, {}, held, {}, final_loss, budget.summary()
    )
    model.base_classifier = base_classifier(encoder, head, len(labels))
    tuned_predicted = model.predict(held_texts)
    truth = list(held["intent"])
    tuned_metrics = classification_metrics(truth, tuned_predicted, labels)
    model.metrics = {"base": base_metrics, "fine_tuned": tuned_metrics}
    model.held_out_scores = HeldOutScores(
        "accuracy",
        held_out_examples(held),
        {
            "base": right_or_wrong(truth, base_predicted),
            "fine_tuned": right_or_wrong(truth, tuned_predicted),
        },
    )
    model.timings = phase_timings(started, trained_at, evaluated_at)
    return model


def evaluate_golden_set(model: ClassifierModel, golden: pd.DataFrame) -> dict[str, object]:
    """Metrics on a customer's held-apart `text,intent` set; unknown intents count as errors."""
    predicted = model.predict(list(golden["text"]))
    truth = list(golden["intent"])
    metrics = classification_metrics(truth, predicted, sorted(set(model.labels) | set(truth)))
    metrics["unknown_intents"] = sorted(set(truth) - set(model.labels))
    return metrics
