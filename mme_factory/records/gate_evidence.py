"""`<run>/<kind>/gate_evidence.json`: how the served model scored, example by example.

Promote keeps it beside the manifest (`gate-evidence/<customer>/<kind>/v<N>.json`, named by
the kind's manifest entry), so the next retrain compares its challenger with the live version
on the same examples without evaluating the live model again; rollback points back at the
earlier entry and so at its evidence. The examples are held apart from training: a challenger
never trains on the examples its champion is judged on.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from mme_factory.records.json_record import JsonFile


class GateEvidence(JsonFile):
    file_name: ClassVar[str] = "gate_evidence.json"

    kind: str
    metric: str  # the mean of `scores` is this metric on these examples
    model: str  # which candidate scored: "fine_tuned" or the baseline's name
    data_sha256: str  # what the scored model was trained from
    # One entry per example: its content as the kind's scorer reads it (a text and its intent,
    # a query and the group of its answer, a reply's context, start and next word) and `row`,
    # the digest of the training row it came from, which the next challenger trains without.
    examples: list[dict[str, str]] = Field(default_factory=list)
    scores: list[float] = Field(default_factory=list)
