"""Validate a customer's data before anything is trained or published from it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
from prefect import task
from prefect.artifacts import create_markdown_artifact

from mme_factory.errors import ValidationFailed
from mme_factory.model_kinds import (
    ARTICLES_FILE,
    CUSTOMER_FILES,
    INTENTS_FILE,
    ModelKind,
    describe,
    supported_kinds,
)
from mme_factory.settings import Settings
from mme_factory.store import open_store
from tasks.data.customer_data import EXPECTED_COLUMNS, CustomerFile, RuleResult, read_customer_file
from tasks.data.data_rules import RuleRunner, file_rules, intent_count_rules
from tasks.data.validation_report import failure_message, render_report


@dataclass
class ValidationSummary:
    data_uri: str
    kinds_found: list[ModelKind]
    kinds_validated: list[ModelKind]
    rows: dict[str, int] = field(default_factory=dict)
    examples_per_intent: dict[str, int] = field(default_factory=dict)
    results: list[RuleResult] = field(default_factory=list)
    report_path: str = ""

    @property
    def failures(self) -> list[RuleResult]:
        return [result for result in self.results if not result.success]

    @property
    def passed(self) -> bool:
        return not self.failures

    def to_dict(self) -> dict[str, object]:
        return {
            "data_uri": self.data_uri,
            "passed": self.passed,
            "kinds_found": [str(kind) for kind in self.kinds_found],
            "kinds_validated": [str(kind) for kind in self.kinds_validated],
            "rows": self.rows,
            "intents": len(self.examples_per_intent),
            "rules_checked": len(self.results),
            "failures": [
                {
                    "file": r.file,
                    "rule": r.rule,
                    "description": r.description,
                    "failed": r.failed,
                    "checked": r.checked,
                    "samples": list(r.samples[:10]),
                }
                for r in self.failures
            ],
        }


def validate_customer_data(
    data_uri: str, settings: Settings, kinds: list[ModelKind] | None = None
) -> ValidationSummary:
    """Check every rule the requested kinds need (default: every kind the data supports)."""
    store = open_store(data_uri, settings)
    present = {name for name in CUSTOMER_FILES if store.exists(name)}
    found = supported_kinds(present)
    summary = ValidationSummary(store.uri(), found, list(kinds or found))
    if not summary.kinds_validated:
        summary.results.append(_no_data_result(store.uri()))
        return summary

    needed: dict[str, list[str]] = {}
    for kind in summary.kinds_validated:
        for name in describe(kind).files_needed(present):
            needed.setdefault(name, []).append(kind)
    for name, users in needed.items():
        summary.results.append(
            RuleResult(name, "missing_file", f"{', '.join(users)} needs {name}", name in present)
        )

    limits = settings.validation
    files = {
        name: read_customer_file(store, name, int(limits.max_file_bytes))
        for name in CUSTOMER_FILES
        if name in needed and name in present
    }
    runner = RuleRunner(limits.sample_rows)
    article_ids = _article_ids(files.get(ARTICLES_FILE))
    for name, loaded in files.items():
        summary.results += loaded.problems
        if loaded.frame is None:
            continue
        summary.rows[name] = len(loaded.frame)
        summary.results.append(_columns_result(loaded))
        rules = file_rules(name, list(loaded.frame.columns), limits, article_ids)
        summary.results += runner.run(name, loaded.frame, rules)
    intents = files.get(INTENTS_FILE)
    if intents is not None and intents.frame is not None and "intent" in intents.frame:
        counts = intents.frame["intent"].dropna().value_counts()
        summary.examples_per_intent = {str(k): int(v) for k, v in counts.sort_index().items()}
        table = pd.DataFrame(
            {"intent": counts.index.astype(str), "examples": counts.to_numpy(dtype=int)}
        )
        summary.results += runner.run(INTENTS_FILE, table, intent_count_rules(limits), "intent")
    return summary


def _no_data_result(uri: str) -> RuleResult:
    expected = ", ".join(CUSTOMER_FILES)
    return RuleResult(
        "(data)",
        "missing_file",
        f"the data holds some of {expected}",
        False,
        0,
        0,
        (f"none found at {uri}",),
    )


def _columns_result(loaded: CustomerFile) -> RuleResult:
    assert loaded.frame is not None
    expected = EXPECTED_COLUMNS[loaded.name]
    missing = [column for column in expected if column not in loaded.frame.columns]
    samples = (f"missing {missing}; found {list(loaded.frame.columns)}",) if missing else ()
    return RuleResult(
        loaded.name,
        "missing_column",
        f"columns {', '.join(expected)} are present",
        not missing,
        len(missing),
        len(expected),
        samples,
    )


def _article_ids(articles: CustomerFile | None) -> list[str] | None:
    if articles is None or articles.frame is None or "id" not in articles.frame:
        return None
    return sorted({str(value) for value in articles.frame["id"].dropna()})


def write_report(summary: ValidationSummary, settings: Settings) -> Path:
    """Write the Markdown report under the state directory and return its path."""
    directory = settings.reports_dir / "validation"
    directory.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    slug = Path(summary.data_uri.rstrip("/")).name or "data"
    path = directory / f"{slug}-{stamp}.md"
    path.write_text(render_report(summary, settings.validation.sample_rows), encoding="utf-8")
    return path


def validate_data(
    data_uri: str, settings: Settings, kinds: list[ModelKind] | None = None
) -> tuple[ValidationSummary, Path]:
    """Validate and write the report; raise ValidationFailed listing every failed rule."""
    summary = validate_customer_data(data_uri, settings, kinds)
    report = write_report(summary, settings)
    summary.report_path = str(report)
    if not summary.passed:
        message = failure_message(summary, settings.validation.sample_rows)
        raise ValidationFailed(f"{message}\nreport: {report}", report.read_text(encoding="utf-8"))
    return summary, report


@task(name="validate-data")
def validate_data_task(
    data_uri: str, settings: Settings, kinds: list[ModelKind] | None = None
) -> ValidationSummary:
    """Validate customer data and attach the report to the run."""
    try:
        summary, report = validate_data(data_uri, settings, kinds)
    except ValidationFailed as failure:
        create_markdown_artifact(failure.report_markdown, key="validation-report")
        raise
    create_markdown_artifact(report.read_text(encoding="utf-8"), key="validation-report")
    return summary
