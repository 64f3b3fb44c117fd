"""Held-out examples, each candidate's score on each, and keeping a champion's examples apart.

An example is a small dict of strings, the content its kind's scorer reads, plus `row`: the
digest of the training row it came from. A challenger trains on the customer's data without
the rows its champion's examples came from, so the two are compared on examples neither saw.
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass

import pandas as pd

from tasks.data.training_data import CustomerDataset

# The most examples a served model's evidence keeps.
MAX_EVIDENCE_EXAMPLES = 5_000


def row_key(*parts: str) -> str:
    """The digest that names a training row by its content."""
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:20]


@dataclass
class HeldOutScores:
    """Per-example scores (1.0 right, 0.0 wrong) of each candidate on the same examples; their
    mean is `metric`."""

    metric: str
    examples: list[dict[str, str]]
    scores: dict[str, list[float]]  # "fine_tuned" and the kind's baseline


# The columns that name a row of each customer table.
ROW_COLUMNS = {"intents": ("text",), "pairs": ("query",), "replies": ("context", "reply")}


def row_keys(frame: pd.DataFrame, columns: tuple[str, ...]) -> list[str]:
    return [
        row_key(*(str(v) for v in values))
        for values in zip(*(frame[c] for c in columns), strict=True)
    ]


def without_rows(data: CustomerDataset, excluded: set[str]) -> CustomerDataset:
    """The data without the rows `excluded` names."""
    if not excluded:
        return data
    changes = {}
    for name, columns in ROW_COLUMNS.items():
        frame = getattr(data, name)
        if frame is not None:
            kept = [key not in excluded for key in row_keys(frame, columns)]
            changes[name] = frame.loc[kept].reset_index(drop=True)
    return dataclasses.replace(data, **changes)
