"""Fine-tune a query encoder and an article encoder with in-batch negatives."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np
import pandas as pd
import torch

from mme_factory.records import StepsSummary
from mme_factory.settings.training import EmbeddingTraining
from tasks.data.training_data import CustomerDataset, TrainingDataError, split_labelled, split_rows
from tasks.training.base_models import load_encoder
from tasks.training.batching import random_batches
from tasks.training.budgeted_optimizer import BudgetedOptimizer
from tasks.training.encoders import SentenceEncoder, embed, trainable_parameters
from tasks.training.frozen_layers import EncoderInputs
from tasks.training.held_out import HeldOutScores, row_key
from tasks.training.metrics import retrieval_metrics
from tasks.training.step_budget import StepBudget, budgeted_batches
from tasks.training.token_batches import TokenizedSide
from tasks.training.trained_model import phase_timings

# The final evaluation's time is estimated by the baseline's on the same texts, with room to spare.
EVALUATION_MARGIN = 1.5


@dataclass
class RetrievalTask:
    """Training pairs and a held-out retrieval problem, in one of two modes."""

    mode: str  # "articles": query-article pairs; "same_intent": pairs of texts of one intent
    train: list[tuple[str, str, str]]  # (query text, positive text, group of the positive)
    queries: list[str]
    query_groups: list[str]
    corpus: list[str]
    corpus_groups: list[str]


@dataclass
class EmbeddingModel:
    query_encoder: SentenceEncoder
    article_encoder: SentenceEncoder
    tokenizer: Any
    config: EmbeddingTraining
    mode: str
    metrics: dict[str, dict[str, float]]
    timings: dict[str, float] = field(default_factory=dict)
    final_loss: float | None = None
    steps: StepsSummary | None = None
    base_encoder: SentenceEncoder | None = None
    task: RetrievalTask | None = None  # its corpus ranks the answers of scored queries
    held_out_scores: HeldOutScores | None = None

    def as_base(self) -> EmbeddingModel:
        """The same model with the base encoder in both roles."""
        if self.base_encoder is None:
            raise ValueError("the model kept no base encoder")
        return dataclasses.replace(
            self, query_encoder=self.base_encoder, article_encoder=self.base_encoder
        )


def first_hits(
    query_encoder: torch.nn.Module,
    article_encoder: torch.nn.Module,
    tokenizer: Any,
    queries: list[str],
    query_groups: list[str],
    task_: RetrievalTask,
    config: EmbeddingTraining,
) -> list[float]:
    """1.0 for each query whose best-ranked corpus item answers it, else 0.0 (recall@1)."""
    embedded = embed(query_encoder, tokenizer, queries, config.query_max_length)
    corpus = embed(article_encoder, tokenizer, task_.corpus, config.article_max_length)
    return ranked_first(embedded, corpus, query_groups, task_.corpus_groups)


def ranked_first(
    queries: torch.Tensor, corpus: torch.Tensor, query_groups: list[str], corpus_groups: list[str]
) -> list[float]:
    best = (queries @ corpus.T).argmax(dim=1).tolist()
    return [float(corpus_groups[b] == group) for b, group in zip(best, query_groups, strict=True)]


def score_examples(model: EmbeddingModel, examples: list[dict[str, str]]) -> list[float]:
    """recall@1 of each example's query against this model's corpus."""
    if model.task is None:
        raise ValueError("the model kept no retrieval task")
    return first_hits(
        model.query_encoder,
        model.article_encoder,
        model.tokenizer,
        [example["query"] for example in examples],
        [example["group"] for example in examples],
        model.task,
        model.config,
    )


def held_out_examples(task_: RetrievalTask) -> list[dict[str, str]]:
    return [
        {"query": query, "group": str(group), "row": row_key(query)}
        for query, group in zip(task_.queries, task_.query_groups, strict=True)
    ]


def article_text(row: pd.Series) -> str:
    return f"{row['title']}. {row['body']}".strip(". ")


def retrieval_task(
    data: CustomerDataset,
    config: EmbeddingTraining,
    fraction: float,
    seed: int,
    held_out: pd.DataFrame | None = None,
) -> RetrievalTask:
    """Query-article pairs when the customer has them, else same-intent text pairs."""
    has_pairs = data.pairs is not None and not data.pairs.empty
    if has_pairs and data.articles is not None and held_out is None:
        texts = {row["id"]: article_text(row) for _, row in data.articles.iterrows()}
        train, held = split_rows(data.pairs, fraction, seed)
        ids = sorted(texts)
        return RetrievalTask(
            "articles",
            [(q, texts[a], a) for q, a in zip(train["query"], train["article_id"], strict=True)],
            list(held["query"]),
            list(held["article_id"]),
            [texts[i] for i in ids],
            ids,
        )
    if data.intents is None or data.intents["intent"].nunique() < 2:
        raise TrainingDataError(
            "embedding needs pairs.csv with articles.jsonl, or intents.csv with at least 2 intents"
        )
    if held_out is None:
        train, held = split_labelled(data.intents, "intent", fraction, seed)
    else:
        train, held = data.intents, held_out
    rng = np.random.default_rng(seed)
    pairs = []
    for intent, group in train.groupby("intent", sort=True):
        texts = list(group["text"])
        if len(texts) < 2:
            continue
        for index, text in enumerate(texts):
            others = [t for j, t in enumerate(texts) if j != index]
            for partner in rng.choice(
                others, size=min(config.same_intent_pairs_per_text, len(others)), replace=False
            ):
                pairs.append((text, str(partner), str(intent)))
    return RetrievalTask(
        "same_intent",
        pairs,
        list(held["text"]),
        list(held["intent"]),
        list(train["text"]),
        list(train["intent"]),
    )


def evaluate(
    query_encoder: torch.nn.Module,
    article_encoder: torch.nn.Module,
    tokenizer: Any,
    task_: RetrievalTask,
    config: EmbeddingTraining,
) -> tuple[dict[str, float], list[float]]:
    """Held-out retrieval metrics, and each held-out query's recall@1."""
    queries = embed(query_encoder, tokenizer, task_.queries, config.query_max_length)
    corpus = embed(article_encoder, tokenizer, task_.corpus, config.article_max_length)
    relevant = torch.tensor(
        [[q == c for c in task_.corpus_groups] for q in task_.query_groups], dtype=torch.bool
    )
    hits = ranked_first(queries, corpus, task_.query_groups, task_.corpus_groups)
    return retrieval_metrics(queries, corpus, relevant), hits


def contrastive_loss(
    queries: torch.Tensor, positives: torch.Tensor, groups: list[str], temperature: float
) -> torch.Tensor:
    """Symmetric InfoNCE; other in-batch items of the same group are not counted as negatives."""
    scores = queries @ positives.T / temperature
    ids = {group: number for number, group in enumerate(dict.fromkeys(groups))}
    codes = torch.tensor([ids[group] for group in groups])
    same = (codes[:, None] == codes[None, :]) & ~torch.eye(len(groups), dtype=torch.bool)
    scores = scores.masked_fill(same, float("-inf"))
    labels = torch.arange(len(groups))
    cross = torch.nn.functional.cross_entropy
    return (cross(scores, labels) + cross(scores.T, labels)) / 2


def encode_once(
    encoder: SentenceEncoder, tokenizer: Any, texts: list[str], max_length: int
) -> torch.Tensor:
    """Embeddings of `texts`, each distinct text encoded once: a batch of query-article pairs
    names the same few articles many times, and articles are the long texts."""
    side = TokenizedSide.of(tokenizer, texts, max_length)
    return encode_side(encoder, EncoderInputs.of(encoder, side.tokens, 0), side, range(len(texts)))


def encode_side(
    encoder: SentenceEncoder, inputs: EncoderInputs, side: TokenizedSide, pairs: Sequence[int]
) -> torch.Tensor:
    """Embeddings of one side's texts of the pairs at `pairs`, each distinct text encoded once;
    `inputs` holds that side's distinct texts."""
    distinct, rows = side.distinct_texts(pairs)
    return inputs.encode(encoder, distinct)[rows]


def train_dual_encoder(
    query_encoder: SentenceEncoder,
    article_encoder: SentenceEncoder,
    tokenizer: Any,
    pairs: list[tuple[str, str, str]],
    config: EmbeddingTraining,
    seed: int,
    budget: StepBudget,
) -> float | None:
    frozen = config.frozen_layers
    params = trainable_parameters(query_encoder, config.train_token_embeddings, frozen)
    params += trainable_parameters(article_encoder, config.train_token_embeddings, frozen)
    optimizer = torch.optim.AdamW(params, lr=config.learning_rate)
    steps = BudgetedOptimizer("embedding", optimizer, budget)
    rng = np.random.default_rng(seed)
    queries_side = TokenizedSide.of(tokenizer, [p[0] for p in pairs], config.query_max_length)
    positives_side = TokenizedSide.of(tokenizer, [p[1] for p in pairs], config.article_max_length)
    query_inputs = EncoderInputs.of(query_encoder, queries_side.tokens, frozen)
    positive_inputs = EncoderInputs.of(article_encoder, positives_side.tokens, frozen)
    query_encoder.train()
    article_encoder.train()
    for indices in budgeted_batches(
        budget, partial(random_batches, len(pairs), config.batch_size, rng)
    ):
        if len(indices) < 2:
            continue
        queries = encode_side(query_encoder, query_inputs, queries_side, indices)
        positives = encode_side(article_encoder, positive_inputs, positives_side, indices)
        groups = [pairs[i][2] for i in indices]
        loss = contrastive_loss(queries, positives, groups, config.temperature)
        steps.step(loss, params)
    query_encoder.eval()
    article_encoder.eval()
    return steps.final_loss


def planned_steps(pairs: int, config: EmbeddingTraining) -> int:
    """Steps of all epochs; a last batch of one pair is skipped (in-batch negatives need two)."""
    full, rest = divmod(pairs, config.batch_size)
    return max(1, config.epochs * (full + (rest >= 2)))


def finetune_embedding(
    data: CustomerDataset,
    config: EmbeddingTraining,
    fraction: float,
    seed: int,
    held_out: pd.DataFrame | None = None,
) -> EmbeddingModel:
    """Train both encoders from the base model; metrics of base and fine-tuned on held-out data."""
    started = time.monotonic()
    task_ = retrieval_task(data, config, fraction, seed, held_out)
    if len(task_.train) < 2 or not task_.queries:
        raise TrainingDataError(
            f"embedding: {len(task_.train)} training pairs and "
            f"{len(task_.queries)} held-out queries; need more data"
        )
    transformer, tokenizer = load_encoder(config.base_model)
    base = SentenceEncoder(transformer).eval()
    baseline_at = time.monotonic()
    base_metrics, base_hits = evaluate(base, base, tokenizer, task_, config)
    evaluation_s = time.monotonic() - baseline_at
    torch.manual_seed(seed)
    query_encoder, article_encoder = base.copy(), base.copy()
    trained_at = time.monotonic()
    budget = StepBudget.from_minutes(
        planned_steps(len(task_.train), config),
        config.time_budget_minutes,
        started,
        reserve_s=evaluation_s * EVALUATION_MARGIN,
    )
    final_loss = train_dual_encoder(
        query_encoder, article_encoder, tokenizer, task_.train, config, seed, budget
    )
    evaluated_at = time.monotonic()
    tuned_metrics, tuned_hits = evaluate(query_encoder, article_encoder, tokenizer, task_, config)
    scores = {"base": base_hits, "fine_tuned": tuned_hits}
    return EmbeddingModel(
        query_encoder,
        article_encoder,
        tokenizer,
        config,
        task_.mode,
        {"base": base_metrics, "fine_tuned": tuned_metrics},
        phase_timings(started, trained_at, evaluated_at),
        final_loss,
        budget.summary(),
        base_encoder=base,
        task=task_,
        held_out_scores=HeldOutScores("recall_at_1", held_out_examples(task_), scores),
    )


def evaluate_golden_set(model: EmbeddingModel, golden: pd.DataFrame) -> dict[str, object]:
    """Same-intent retrieval inside a held-apart `text,intent` set (each text against the rest)."""
    texts, intents = list(golden["text"]), list(golden["intent"])
    config, tokenizer = model.config, model.tokenizer
    relevant = torch.tensor([[a == b for b in intents] for a in intents], dtype=torch.bool)
    itself = torch.eye(len(texts), dtype=torch.bool)
    base = SentenceEncoder(load_encoder(config.base_model)[0]).eval()
    results = {}
    for name, query_encoder, article_encoder in (
        ("base", base, base),
        ("fine_tuned", model.query_encoder, model.article_encoder),
    ):
        queries = embed(query_encoder, tokenizer, texts, config.query_max_length)
        corpus = embed(article_encoder, tokenizer, texts, config.article_max_length)
        results[name] = retrieval_metrics(queries, corpus, relevant, exclude=itself)
    return results
