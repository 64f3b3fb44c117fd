"""BANKING77 as benchmarks read it, and a 30-intent customer built from it.

The 30-intent customer the training goal is stated for (CLINC150's travel domain: 30 intents,
3,600 training and 900 test texts) is not on this machine. `customer30` is its proxy with the
same shape: the first 30 BANKING77 intents in sorted order among those with at least 120
training texts (some have as few as 35), 120 training texts per intent from train.csv and 30
test texts per intent from test.csv, each a seeded sample.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

BANKING77 = Path(__file__).resolve().parent.parent.parent / "shared" / "datasets" / "banking77"
PROXY_INTENTS = 30
PROXY_TRAIN_PER_INTENT = 120
PROXY_TEST_PER_INTENT = 30
PROXY_SEED = 13


def banking77_split(name: str) -> pd.DataFrame:
    """`text,intent` rows of BANKING77's train.csv or test.csv."""
    frame = pd.read_csv(BANKING77 / name, dtype=str, keep_default_na=False)
    return frame.rename(columns={"category": "intent"})[["text", "intent"]]


def banking77() -> tuple[pd.DataFrame, pd.DataFrame]:
    return banking77_split("train.csv"), banking77_split("test.csv")


def per_intent_sample(frame: pd.DataFrame, intents: list[str], per_intent: int) -> pd.DataFrame:
    chosen = frame[frame["intent"].isin(intents)]
    sample = chosen.groupby("intent", sort=True).sample(n=per_intent, random_state=PROXY_SEED)
    return sample.sort_index().reset_index(drop=True)


def customer30() -> tuple[pd.DataFrame, pd.DataFrame]:
    """(train, test) of the 30-intent proxy: 3,600 and 900 texts."""
    train, test = banking77()
    counts = train["intent"].value_counts()
    intents = sorted(counts[counts >= PROXY_TRAIN_PER_INTENT].index)[:PROXY_INTENTS]
    return (
        per_intent_sample(train, intents, PROXY_TRAIN_PER_INTENT),
        per_intent_sample(test, intents, PROXY_TEST_PER_INTENT),
    )
