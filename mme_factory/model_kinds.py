"""The model kinds each customer gets, each described once: every stage looks its kind up here.

A description holds the facts that differ between kinds: the data files it trains from, the
TargetModels one customer has of it (one per role), the metrics that judge it and the requests
that exercise it when served. What training does per kind is in `tasks.training.kind_training`;
its Triton layout is `triton_models/<kind>/layout.yaml`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class ModelKind(StrEnum):
    EMBEDDING = "embedding"
    CLASSIFIER = "classifier"
    AUTOCOMPLETE = "autocomplete"


INTENTS_FILE = "intents.csv"
ARTICLES_FILE = "articles.jsonl"
PAIRS_FILE = "pairs.csv"
REPLIES_FILE = "replies.jsonl"
CUSTOMER_FILES = (INTENTS_FILE, ARTICLES_FILE, PAIRS_FILE, REPLIES_FILE)

SUPPORT_MESSAGE = (
    "Hello, I was charged twice for my order last week and would like the second payment "
    "refunded to my card, order number A10234."
)
AUTOCOMPLETE_TIME_LIMIT_MS = 5_000  # smoke inference: the warm answer of 16 tokens takes less


@dataclass(frozen=True)
class GateSpec:
    """How the quality gate judges a kind: the metric a challenger and its champion are compared
    on, example by example, with a paired test; the minimums a served model must reach."""

    metric: str  # the mean of per-example scores (1 right, 0 wrong)
    paired_test: str  # "mcnemar" or "paired_bootstrap"
    minimums: tuple[tuple[str, str], ...]  # (metric, field of the kind's training settings)
    # The baseline is a complete model the endpoint can serve (a frozen encoder with a trained
    # head, the base encoder); a unigram table is not.
    baseline_servable: bool


@dataclass(frozen=True)
class KindDescription:
    kind: ModelKind
    data_files: tuple[tuple[str, ...], ...]  # alternatives, preferred first
    roles: tuple[str, ...]  # one TargetModel per role; none means one TargetModel
    baseline: str  # the reference model the fine-tuned one is measured against
    headline_metrics: tuple[str, ...]  # shown against the baseline in reports
    summary_metric: str  # the one number a one-line summary shows
    gate: GateSpec
    warmup_inputs: dict[str, list[Any]]
    latency_inputs: dict[str, list[Any]]  # one realistic support message, for the planner
    smoke_options: dict[str, Any] = field(default_factory=dict)  # sent with every smoke text
    smoke_batch: int | None = None  # at most this many smoke texts per request

    @property
    def layout(self) -> str:
        """The folder under `triton_models/` holding the kind's Triton layout."""
        return self.kind.value

    @property
    def targets_per_customer(self) -> int:
        return len(self.roles) or 1

    @property
    def default_role(self) -> str | None:
        return self.roles[0] if self.roles else None

    def files_needed(self, present: set[str]) -> tuple[str, ...]:
        """The first alternative whose leading file the customer has; else the preferred one."""
        for files in self.data_files:
            if files[0] in present:
                return files
        return self.data_files[0]

    def smoke_request(self, texts: list[str]) -> dict[str, list[Any]]:
        """The inputs of one smoke-test request: the texts, each with the kind's options."""
        inputs: dict[str, list[Any]] = {"text": texts}
        for name, value in self.smoke_options.items():
            inputs[name] = [value] * len(texts)
        return inputs


KINDS: dict[ModelKind, KindDescription] = {
    description.kind: description
    for description in (
        KindDescription(
            kind=ModelKind.EMBEDDING,
            data_files=((PAIRS_FILE, ARTICLES_FILE), (INTENTS_FILE,)),
            roles=("query", "article"),
            baseline="base",
            headline_metrics=("recall_at_1", "recall_at_5", "mrr"),
            summary_metric="recall_at_1",
            gate=GateSpec(
                "recall_at_1",
                "paired_bootstrap",
                (("recall_at_1", "min_recall_at_1"),),
                baseline_servable=True,
            ),
            warmup_inputs={"text": ["warm-up"]},
            latency_inputs={"text": [SUPPORT_MESSAGE]},
        ),
        KindDescription(
            kind=ModelKind.CLASSIFIER,
            data_files=((INTENTS_FILE,),),
            roles=(),
            baseline="base",
            headline_metrics=("accuracy", "macro_f1"),
            summary_metric="accuracy",
            gate=GateSpec(
                "accuracy", "mcnemar", (("accuracy", "min_accuracy"),), baseline_servable=True
            ),
            warmup_inputs={"text": ["warm-up"]},
            latency_inputs={"text": [SUPPORT_MESSAGE]},
        ),
        KindDescription(
            kind=ModelKind.AUTOCOMPLETE,
            data_files=((REPLIES_FILE,),),
            roles=(),
            baseline="unigram",
            headline_metrics=("perplexity_per_word", "next_word_accuracy"),
            summary_metric="next_word_accuracy",
            gate=GateSpec(
                "next_word_accuracy",
                "paired_bootstrap",
                (("next_word_accuracy", "min_next_word_accuracy"),),
                baseline_servable=False,
            ),
            warmup_inputs={"text": ["Customer: hello"], "max_new_tokens": [1]},
            latency_inputs={
                "text": ["Customer: " + SUPPORT_MESSAGE + "\nAgent:"],
                "max_new_tokens": [16],
            },
            smoke_options={"max_new_tokens": 16},
            smoke_batch=1,
        ),
    )
}


def describe(kind: ModelKind | str) -> KindDescription:
    """The description of `kind`; an unknown name raises ValueError naming the known ones."""
    try:
        return KINDS[ModelKind(kind)]
    except ValueError:
        raise ValueError(f"unknown model kind {kind!r}; choose from {kind_names()}") from None


def kind_names() -> list[str]:
    return [kind.value for kind in ModelKind]


def supported_kinds(present: set[str]) -> list[ModelKind]:
    """Every kind whose data files are all present."""
    return [kind for kind in ModelKind if set(KINDS[kind].files_needed(present)) <= present]


def parse_kinds(names: list[str] | None) -> list[ModelKind] | None:
    """Turn `["all"]`, `["embedding", "classifier"]` or `["a,b"]` into kinds; None means default."""
    if not names:
        return None
    flat = [part.strip() for name in names for part in name.split(",") if part.strip()]
    if "all" in flat:
        return list(ModelKind)
    unknown = [name for name in flat if name not in kind_names()]
    if unknown:
        raise ValueError(
            f"unknown model kind(s) {unknown}; choose from {sorted(kind_names())} or 'all'"
        )
    return [ModelKind(name) for name in dict.fromkeys(flat)]
