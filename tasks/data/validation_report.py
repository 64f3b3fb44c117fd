"""The human-readable validation report (Markdown) and the one-paragraph failure message."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tasks.data.customer_data import RuleResult
    from tasks.data.validate_data import ValidationSummary


def _count(result: RuleResult) -> str:
    if result.checked:
        return f"{result.failed:,} of {result.checked:,}"
    return f"{result.failed:,}" if result.failed else "failed"


def failure_line(result: RuleResult, sample_rows: int) -> str:
    samples = "; ".join(result.samples[:sample_rows])
    more = len(result.samples) - sample_rows
    tail = f" — {samples}" + (f"; … {more} more" if more > 0 else "") if samples else ""
    return f"{result.file} · {result.rule} ({result.description}): {_count(result)}{tail}"


def failure_message(summary: ValidationSummary, sample_rows: int) -> str:
    failures = summary.failures
    lines = [f"data at {summary.data_uri} failed {len(failures)} validation rule(s):"]
    lines += [f"  - {failure_line(result, sample_rows)}" for result in failures]
    return "\n".join(lines)


def render_report(summary: ValidationSummary, sample_rows: int) -> str:
    verdict = "passed" if summary.passed else "FAILED"
    found = ", ".join(summary.kinds_found) or "none"
    validated = ", ".join(summary.kinds_validated) or "none"
    lines = [
        f"# Data validation {verdict}: `{summary.data_uri}`",
        "",
        f"Kinds with data: **{found}**. Kinds validated: **{validated}**.",
        "",
        "| file | rows |",
        "| --- | ---: |",
        *(f"| {name} | {rows:,} |" for name, rows in summary.rows.items()),
    ]
    if summary.examples_per_intent:
        low, high = (
            min(summary.examples_per_intent.values()),
            max(summary.examples_per_intent.values()),
        )
        lines += ["", f"{len(summary.examples_per_intent)} intents, {low} to {high} examples each."]
    if summary.failures:
        lines += ["", f"## Failed rules ({len(summary.failures)})"]
        for result in summary.failures:
            lines += [
                "",
                f"### {result.file} · `{result.rule}`",
                "",
                f"{result.description}: **{_count(result)}** failed.",
            ]
            lines += [f"- {sample}" for sample in result.samples[: sample_rows * 4]]
            if len(result.samples) > sample_rows * 4:
                lines.append(f"- … {len(result.samples) - sample_rows * 4} more")
    passed = [result for result in summary.results if result.success]
    lines += [
        "",
        f"## Passed rules ({len(passed)})",
        "",
        "| file | rule | checked |",
        "| --- | --- | ---: |",
    ]
    lines += [f"| {r.file} | {r.description} | {r.checked:,} |" for r in passed]
    return "\n".join(lines) + "\n"
