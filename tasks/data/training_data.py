"""Customer data as training tables, with deterministic train / held-out splits."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import pandas as pd

from mme_factory.errors import MmeFactoryError
from mme_factory.model_kinds import CUSTOMER_FILES
from mme_factory.settings import Settings
from mme_factory.store import open_store
from tasks.data.customer_data import read_customer_file


class TrainingDataError(MmeFactoryError):
    """The data cannot train the requested model (too little of it, or the wrong shape)."""


@dataclass
class CustomerDataset:
    uri: str
    sha256: str
    intents: pd.DataFrame | None = None  # text, intent
    articles: pd.DataFrame | None = None  # id, title, body
    pairs: pd.DataFrame | None = None  # query, article_id
    replies: pd.DataFrame | None = None  # context, reply


def load_dataset(data_uri: str, settings: Settings) -> CustomerDataset:
    """Read every customer file present; the hash covers their bytes, in a fixed order."""
    store = open_store(data_uri, settings)
    digest = hashlib.sha256()
    frames: dict[str, pd.DataFrame] = {}
    for name in CUSTOMER_FILES:
        if not store.exists(name):
            continue
        digest.update(name.encode() + b"\0" + store.read_bytes(name))
        loaded = read_customer_file(store, name, int(settings.validation.max_file_bytes))
        if loaded.frame is not None:
            frames[name.split(".")[0]] = loaded.frame.fillna("").reset_index(drop=True)
    return CustomerDataset(store.uri(), digest.hexdigest(), **frames)


def split_labelled(
    frame: pd.DataFrame, label: str, fraction: float, seed: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Stratified split: every label with two or more rows has at least one held-out row.

    A label with a single row stays in training only (it then has no held-out score).
    """
    rng = np.random.default_rng(seed)
    held: list[int] = []
    for _, group in frame.groupby(label, sort=True):
        if len(group) < 2:
            continue
        count = min(len(group) - 1, max(1, round(len(group) * fraction)))
        held += list(rng.choice(group.index.to_numpy(), size=count, replace=False))
    held_out = frame.loc[sorted(held)]
    return frame.drop(index=held_out.index), held_out


def split_rows(
    frame: pd.DataFrame, fraction: float, seed: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(frame))
    count = max(1, round(len(frame) * fraction))
    if len(frame) < 2:
        raise TrainingDataError(f"need at least 2 rows to hold some out, got {len(frame)}")
    return frame.iloc[np.sort(order[count:])], frame.iloc[np.sort(order[:count])]


def check_intents(frame: pd.DataFrame | None) -> pd.DataFrame:
    if frame is None or frame.empty:
        raise TrainingDataError("intents.csv is missing or empty")
    labels = frame["intent"].nunique()
    if labels < 2:
        raise TrainingDataError(f"intents.csv has {labels} intent(s); a classifier needs 2 or more")
    return frame


def read_golden_set(uri: str, settings: Settings) -> pd.DataFrame:
    """A customer's held-apart `text,intent` CSV (local path or s3:// URI) for evaluation."""
    parent, _, name = uri.rstrip("/").rpartition("/")
    if not name.endswith(".csv"):
        raise TrainingDataError(
            f"{uri}: the golden set must be a .csv file with columns text,intent"
        )
    store = open_store(parent or ".", settings)
    if not store.exists(name):
        raise TrainingDataError(f"golden set {uri} does not exist")
    loaded = read_customer_file(store, name, int(settings.validation.max_file_bytes))
    frame = loaded.frame
    if loaded.problems or frame is None or not {"text", "intent"} <= set(frame.columns):
        raise TrainingDataError(f"{uri}: expected a CSV with columns text,intent")
    return frame.fillna("").reset_index(drop=True)
