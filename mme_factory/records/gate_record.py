"""The quality gate's verdict on a trained model, as its metadata.json keeps it."""

from __future__ import annotations

from mme_factory.records.json_record import JsonRecord


class GateCheckRecord(JsonRecord):
    metric: str
    value: float
    threshold: float
    against: str  # the baseline's name ("base", "unigram") or "minimum"
    passed: bool


class GateRecord(JsonRecord):
    passed: bool
    checks: list[GateCheckRecord]

    @property
    def failed_checks(self) -> list[GateCheckRecord]:
        return [check for check in self.checks if not check.passed]
