"""What training does for each model kind: fine-tune, evaluate a golden set, export, pick the
held-out texts that smoke inference later sends through the endpoint.

The facts about each kind (data files, gate, metrics, roles, requests) are its description in
`mme_factory.model_kinds`; this table holds only the code that runs for it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

import pandas as pd

from mme_factory.model_kinds import ModelKind
from mme_factory.records import AutocompleteExport, ClassifierExport, EmbeddingExport, KindExport
from mme_factory.settings import Settings
from tasks.data.training_data import CustomerDataset
from tasks.training import classifier, embedding
from tasks.training.autocomplete.export import export_autocomplete
from tasks.training.autocomplete.finetune import AutocompleteModel, finetune_autocomplete
from tasks.training.autocomplete.finetune import score_examples as autocomplete_scores
from tasks.training.classifier import ClassifierModel
from tasks.training.embedding import EmbeddingModel
from tasks.training.export_dtype import export_dtype, parity_tolerance
from tasks.training.export_torchscript import (
    export_classifier,
    export_encoder,
)
from tasks.training.trained_model import TrainedModel

Trained = TypeVar("Trained", bound=TrainedModel)


@dataclass(frozen=True)
class KindTraining(Generic[Trained]):
    """The steps of one kind, each taking the model its `train` returned."""

    train: Callable[[CustomerDataset, Settings], Trained]
    export: Callable[[Trained, Path, Settings], KindExport]
    smoke_texts: Callable[[Trained, CustomerDataset], list[str]]
    # The trained model's score on each of a champion's evidence examples.
    score_examples: Callable[[Trained, list[dict[str, str]]], list[float]]
    evaluate_golden_set: Callable[[Trained, pd.DataFrame], dict[str, object]] | None = None
    # The same trained model with its baseline in place of the fine-tuned network, when the
    # baseline is a complete model the endpoint can serve.
    as_baseline: Callable[[Trained], Trained] | None = None


def _train_embedding(data: CustomerDataset, settings: Settings) -> EmbeddingModel:
    t = settings.training
    return embedding.finetune_embedding(data, t.embedding, t.held_out_fraction, t.seed)


def _train_classifier(data: CustomerDataset, settings: Settings) -> ClassifierModel:
    t = settings.training
    return classifier.finetune_classifier(data, t.classifier, t.held_out_fraction, t.seed)


def _train_autocomplete(data: CustomerDataset, settings: Settings) -> AutocompleteModel:
    t = settings.training
    cache = settings.state_dir / "base-models"
    return finetune_autocomplete(data, t.autocomplete, t.held_out_fraction, t.seed, cache)


def _export_embedding(
    trained: EmbeddingModel, directory: Path, settings: Settings
) -> dict[str, EmbeddingExport]:
    config = trained.config
    dtype = export_dtype(settings, ModelKind.EMBEDDING)
    return {
        role: export_encoder(
            getattr(trained, f"{role}_encoder"),
            trained.tokenizer,
            directory / role,
            role,
            max_length,
            parity_tolerance(settings, dtype),
            dtype,
        )
        for role, max_length in (
            ("query", config.query_max_length),
            ("article", config.article_max_length),
        )
    }


def _export_classifier(
    trained: ClassifierModel, directory: Path, settings: Settings
) -> ClassifierExport:
    dtype = export_dtype(settings, ModelKind.CLASSIFIER)
    return export_classifier(
        trained.classifier,
        trained.tokenizer,
        trained.labels,
        directory,
        trained.config.max_length,
        parity_tolerance(settings, dtype),
        dtype,
    )


def _export_autocomplete(
    trained: AutocompleteModel, directory: Path, settings: Settings
) -> AutocompleteExport:
    dtype = export_dtype(settings, ModelKind.AUTOCOMPLETE)
    return export_autocomplete(
        trained.model,
        trained.tokenizer,
        trained.eos_id,
        directory,
        trained.config.max_length,
        settings.training.export_parity_tolerance,
        dtype=dtype,
        max_new_tokens=trained.config.max_new_tokens,
        half_tolerance=settings.training.export_parity_tolerance_fp16_logits,
    )


def _embedding_texts(trained: EmbeddingModel, data: CustomerDataset) -> list[str]:
    if data.pairs is not None and not data.pairs.empty:
        return list(data.pairs["query"])
    return list(data.intents["text"]) if data.intents is not None else []


# Each entry's steps agree on their model's type; the table holds the three side by side.
TRAINING: dict[ModelKind, KindTraining[Any]] = {
    ModelKind.EMBEDDING: KindTraining(
        train=_train_embedding,
        export=_export_embedding,
        smoke_texts=_embedding_texts,
        score_examples=embedding.score_examples,
        evaluate_golden_set=embedding.evaluate_golden_set,
        as_baseline=EmbeddingModel.as_base,
    ),
    ModelKind.CLASSIFIER: KindTraining(
        train=_train_classifier,
        export=_export_classifier,
        smoke_texts=lambda trained, data: list(trained.held_out["text"]),
        score_examples=classifier.score_examples,
        evaluate_golden_set=classifier.evaluate_golden_set,
        as_baseline=ClassifierModel.as_base,
    ),
    ModelKind.AUTOCOMPLETE: KindTraining(
        train=_train_autocomplete,
        export=_export_autocomplete,
        smoke_texts=lambda trained, data: list(trained.held_out["context"]),
        score_examples=autocomplete_scores,
    ),
}
