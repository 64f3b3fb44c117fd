"""The customer-data rules as great-expectations suites, one per customer file.

Each expectation carries its rule id and a sentence in `meta`, so a result reads as a rule.
Tables are indexed by line number, so GX's unexpected indices are the offending lines.
"""

from __future__ import annotations

from collections.abc import Callable

import great_expectations as gx
import great_expectations.expectations as gxe
import pandas as pd
from great_expectations.data_context.types.base import (
    DataContextConfig,
    InMemoryStoreBackendDefaults,
    ProgressBarsConfig,
)

from mme_factory.settings import ValidationSettings
from tasks.data.customer_data import RuleResult, excerpt

REPLACEMENT_CHARACTER = "\ufffd"
MAX_LABEL_CHARS = 100

Rules = list[gxe.Expectation]
Columns = Callable[[str], bool]
Ids = list[str] | None


def _text_rules(column: str, max_chars: int, required: bool = True) -> list[gxe.Expectation]:
    rules: list[gxe.Expectation] = [
        gxe.ExpectColumnValuesToNotBeNull(
            column=column,
            meta={"rule": "missing_field", "description": f"every row has '{column}'"},
        ),
        gxe.ExpectColumnValueLengthsToBeBetween(
            column=column,
            max_value=max_chars,
            meta={
                "rule": "text_too_long",
                "description": f"'{column}' is at most {max_chars:,} chars",
            },
        ),
        gxe.ExpectColumnValuesToNotMatchRegex(
            column=column,
            regex=REPLACEMENT_CHARACTER,
            meta={"rule": "invalid_utf8", "description": f"'{column}' is valid UTF-8"},
        ),
    ]
    if required:
        rules.append(
            gxe.ExpectColumnValuesToMatchRegex(
                column=column,
                regex=r"\S",
                meta={"rule": "empty_text", "description": f"'{column}' is not empty"},
            )
        )
    return rules


def _duplicates_rule(columns: list[str], limits: ValidationSettings) -> gxe.Expectation:
    share = limits.max_duplicate_fraction
    return gxe.ExpectCompoundColumnsToBeUnique(
        column_list=columns,
        mostly=1.0 - share,
        meta={"rule": "duplicate_rows", "description": f"at most {share:.0%} of rows are repeats"},
    )


def _min_rows_rule(minimum: int, what: str) -> gxe.Expectation:
    return gxe.ExpectTableRowCountToBeBetween(
        min_value=minimum,
        meta={"rule": "too_few_rows", "description": f"at least {minimum:,} {what}"},
    )


def _intents_rules(has: Columns, limits: ValidationSettings, article_ids: Ids) -> Rules:
    rules: Rules = []
    if has("text"):
        rules += _text_rules("text", limits.max_text_chars)
    if has("intent"):
        rules += _text_rules("intent", MAX_LABEL_CHARS)
    if has("text") and has("intent"):
        rules.append(_duplicates_rule(["text", "intent"], limits))
    return rules


def _articles_rules(has: Columns, limits: ValidationSettings, article_ids: Ids) -> Rules:
    rules: Rules = []
    if has("id"):
        rules += _text_rules("id", MAX_LABEL_CHARS)
        rules.append(
            gxe.ExpectColumnValuesToBeUnique(
                column="id",
                meta={"rule": "duplicate_article_id", "description": "article ids are unique"},
            )
        )
    if has("title"):
        rules += _text_rules("title", limits.max_text_chars)
    if has("body"):
        rules += _text_rules("body", limits.max_article_chars)
    return rules


def _pairs_rules(has: Columns, limits: ValidationSettings, article_ids: Ids) -> Rules:
    rules: Rules = [_min_rows_rule(limits.min_query_pairs, "query-article pairs")]
    if has("query"):
        rules += _text_rules("query", limits.max_text_chars)
    if has("article_id"):
        rules += _text_rules("article_id", MAX_LABEL_CHARS)
    if has("article_id") and article_ids is not None:
        rules.append(
            gxe.ExpectColumnValuesToBeInSet(
                column="article_id",
                value_set=article_ids,
                meta={
                    "rule": "unknown_article_id",
                    "description": "every article_id is an id in articles.jsonl",
                },
            )
        )
    if has("query") and has("article_id"):
        rules.append(_duplicates_rule(["query", "article_id"], limits))
    return rules


def _replies_rules(has: Columns, limits: ValidationSettings, article_ids: Ids) -> Rules:
    rules: Rules = [_min_rows_rule(limits.min_reply_pairs, "context-reply pairs")]
    if has("context"):
        rules += _text_rules("context", limits.max_context_chars, required=False)
    if has("reply"):
        rules += _text_rules("reply", limits.max_text_chars)
    if has("context") and has("reply"):
        rules.append(_duplicates_rule(["context", "reply"], limits))
    return rules


RULES_BY_FILE: dict[str, Callable[[Columns, ValidationSettings, Ids], Rules]] = {
    "intents.csv": _intents_rules,
    "articles.jsonl": _articles_rules,
    "pairs.csv": _pairs_rules,
    "replies.jsonl": _replies_rules,
}


def file_rules(
    name: str, columns: list[str], limits: ValidationSettings, article_ids: Ids = None
) -> Rules:
    """Every rule for one file, leaving out those on columns the file lacks."""
    return RULES_BY_FILE[name](set(columns).__contains__, limits, article_ids)


def intent_count_rules(limits: ValidationSettings) -> list[gxe.Expectation]:
    """Rules on the table of examples per intent (columns: intent, examples)."""
    return [
        gxe.ExpectTableRowCountToBeBetween(
            min_value=limits.min_intents,
            meta={
                "rule": "too_few_intents",
                "description": f"at least {limits.min_intents} intents",
            },
        ),
        gxe.ExpectColumnValuesToBeBetween(
            column="examples",
            min_value=limits.min_examples_per_intent,
            meta={
                "rule": "too_few_examples_per_intent",
                "description": f"every intent has {limits.min_examples_per_intent}+ examples",
            },
        ),
    ]


class RuleRunner:
    """Runs expectation lists against dataframes in one in-memory GX context."""

    def __init__(self, sample_rows: int) -> None:
        self.sample_rows = sample_rows
        config = DataContextConfig(
            analytics_enabled=False,
            progress_bars=ProgressBarsConfig(globally=False),
            store_backend_defaults=InMemoryStoreBackendDefaults(),
        )
        self.context = gx.get_context(mode="ephemeral", project_config=config)
        self.source = self.context.data_sources.add_pandas("customer_data")

    def run(
        self, name: str, frame: pd.DataFrame, rules: list[gxe.Expectation], row_label: str = "line"
    ) -> list[RuleResult]:
        asset = self.source.add_dataframe_asset(f"{name}#{len(self.source.assets)}")
        batch = asset.add_batch_definition_whole_dataframe("all").get_batch(
            batch_parameters={"dataframe": frame}
        )
        suite = gx.ExpectationSuite(name=asset.name, expectations=rules)
        outcome = batch.validate(suite, result_format="COMPLETE")
        return [self._result(name, frame, item, row_label) for item in outcome.results]

    def _result(self, name: str, frame: pd.DataFrame, item, row_label: str) -> RuleResult:
        meta = item.expectation_config.meta
        detail = item.result or {}
        raised = (item.exception_info or {}).get("raised_exception")
        if raised:
            message = (item.exception_info or {}).get("exception_message", "unknown error")
            return RuleResult(name, meta["rule"], meta["description"], False, 0, 0, (message,))
        checked = int(detail.get("element_count", len(frame)))
        if "observed_value" in detail and "unexpected_count" not in detail:
            observed = detail["observed_value"]
            samples = () if item.success else (f"found {observed}",)
            return RuleResult(
                name, meta["rule"], meta["description"], bool(item.success), 0, checked, samples
            )
        indices = detail.get("unexpected_index_list") or []
        samples = tuple(self._sample(frame, index, row_label, meta) for index in indices)
        return RuleResult(
            name,
            meta["rule"],
            meta["description"],
            bool(item.success),
            int(detail.get("unexpected_count", len(indices))),
            checked,
            samples[: self.sample_rows * 4],
        )

    @staticmethod
    def _sample(frame: pd.DataFrame, index: object, row_label: str, meta: dict) -> str:
        if isinstance(index, dict):  # compound-column rules report {"pk_index": i, ...}
            index = next(iter(index.values()))
        row = frame.loc[index]
        if row_label != "line":
            return ": ".join(str(value) for value in row)
        values = ", ".join(f"{column}={excerpt(row[column], 60)}" for column in frame.columns)
        return f"line {index}: {values}"
