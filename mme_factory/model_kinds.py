"""The model kinds each customer gets, and which data files each one trains from (DESIGN §5)."""

from __future__ import annotations

from enum import StrEnum


class ModelKind(StrEnum):
    EMBEDDING = "embedding"
    CLASSIFIER = "classifier"
    AUTOCOMPLETE = "autocomplete"


INTENTS_FILE = "intents.csv"
ARTICLES_FILE = "articles.jsonl"
PAIRS_FILE = "pairs.csv"
REPLIES_FILE = "replies.jsonl"
CUSTOMER_FILES = (INTENTS_FILE, ARTICLES_FILE, PAIRS_FILE, REPLIES_FILE)


def files_needed(kind: ModelKind, present: set[str]) -> tuple[str, ...]:
    """The files `kind` trains from, given which files the customer has.

    Embedding prefers query-article pairs and falls back to same-intent pairs from intents.csv.
    """
    if kind is ModelKind.CLASSIFIER:
        return (INTENTS_FILE,)
    if kind is ModelKind.AUTOCOMPLETE:
        return (REPLIES_FILE,)
    if PAIRS_FILE in present or INTENTS_FILE not in present:
        return (PAIRS_FILE, ARTICLES_FILE)
    return (INTENTS_FILE,)


def supported_kinds(present: set[str]) -> list[ModelKind]:
    """Every kind whose data files are all present."""
    return [kind for kind in ModelKind if set(files_needed(kind, present)) <= present]


def parse_kinds(names: list[str] | None) -> list[ModelKind] | None:
    """Turn `["all"]`, `["embedding", "classifier"]` or `["a,b"]` into kinds; None means default."""
    if not names:
        return None
    flat = [part.strip() for name in names for part in name.split(",") if part.strip()]
    if "all" in flat:
        return list(ModelKind)
    known = {kind.value: kind for kind in ModelKind}
    unknown = [name for name in flat if name not in known]
    if unknown:
        raise ValueError(f"unknown model kind(s) {unknown}; choose from {sorted(known)} or 'all'")
    return [known[name] for name in dict.fromkeys(flat)]
