"""What replaces an offboarded customer's manifest at `registry/<customer>.json`.

The serving path refuses the customer, warm-up skips it and onboarding refuses it, until a
person reinstates the customer (`mme-factory reinstate`); its versions are then numbered after
`highest_version`.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from mme_factory.records.json_record import JsonRecord


class Tombstone(JsonRecord):
    always_written = ("offboarded",)

    customer: str
    offboarded: Literal[True] = True
    offboarded_at: str | None = None
    highest_version: int = Field(strict=True)  # the highest version the customer ever had
    fence: int | None = None  # the lock generation of the run that wrote it
