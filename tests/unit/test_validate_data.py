"""Each customer-data rule against a deliberately broken copy of the sample customer."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mme_factory.errors import ValidationFailed
from mme_factory.model_kinds import ModelKind
from tasks.data.validate_data import validate_customer_data, validate_data
from test_support.paths import ACME


def failed_rules(data: Path, settings, kinds=None) -> dict[tuple[str, str], object]:
    summary = validate_customer_data(str(data), settings, kinds)
    return {(result.file, result.rule): result for result in summary.failures}


def rewrite_line(path: Path, number: int, text: str) -> None:
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    lines[number - 1] = text
    path.write_text("".join(lines), encoding="utf-8")


def test_sample_customer_passes_every_rule(settings):
    summary, report = validate_data(str(ACME), settings)
    assert summary.passed
    assert summary.kinds_found == list(ModelKind)
    assert summary.rows == {
        "intents.csv": 1024,
        "articles.jsonl": 24,
        "pairs.csv": 384,
        "replies.jsonl": 1200,
    }
    assert report.is_file()
    assert "Data validation passed" in report.read_text(encoding="utf-8")


def test_intents_only_supports_classifier_and_embedding(acme_copy, settings):
    for name in ("articles.jsonl", "pairs.csv", "replies.jsonl"):
        (acme_copy / name).unlink()
    summary = validate_customer_data(str(acme_copy), settings)
    assert summary.passed
    assert summary.kinds_found == [ModelKind.EMBEDDING, ModelKind.CLASSIFIER]
    assert list(summary.rows) == ["intents.csv"]


def test_missing_file_for_a_requested_kind(acme_copy, settings):
    (acme_copy / "replies.jsonl").unlink()
    with pytest.raises(ValidationFailed) as failure:
        validate_data(str(acme_copy), settings, [ModelKind.AUTOCOMPLETE])
    assert "replies.jsonl · missing_file (autocomplete needs replies.jsonl)" in str(failure.value)
    assert "Failed rules (1)" in failure.value.report_markdown


def test_pairs_without_articles_fail_the_embedding_kind(acme_copy, settings):
    (acme_copy / "articles.jsonl").unlink()
    failures = failed_rules(acme_copy, settings, [ModelKind.EMBEDDING])
    assert ("articles.jsonl", "missing_file") in failures


def test_no_customer_files_at_all(tmp_path, settings):
    failures = failed_rules(tmp_path, settings)
    assert ("(data)", "missing_file") in failures


def test_missing_column(acme_copy, settings):
    rewrite_line(acme_copy / "intents.csv", 1, "text,label\n")
    failure = failed_rules(acme_copy, settings)[("intents.csv", "missing_column")]
    assert "missing ['intent']" in failure.samples[0]


def test_missing_json_key_on_some_lines(acme_copy, settings):
    rewrite_line(acme_copy / "replies.jsonl", 3, json.dumps({"context": "hi"}) + "\n")
    failure = failed_rules(acme_copy, settings)[("replies.jsonl", "missing_field")]
    assert failure.failed == 1
    assert failure.samples[0].startswith("line 3:")


def test_empty_text(acme_copy, settings):
    rewrite_line(acme_copy / "intents.csv", 5, "   ,order_status\n")
    rewrite_line(acme_copy / "intents.csv", 9, ",order_status\n")
    failure = failed_rules(acme_copy, settings)[("intents.csv", "empty_text")]
    assert failure.failed == 2
    assert [sample.split(":")[0] for sample in failure.samples] == ["line 5", "line 9"]


def test_duplicate_flood(acme_copy, settings):
    path = acme_copy / "intents.csv"
    with path.open("a", encoding="utf-8") as handle:
        handle.write("where is my order?,order_status\n" * 200)
    failure = failed_rules(acme_copy, settings)[("intents.csv", "duplicate_rows")]
    assert failure.failed == 200
    assert "line 1026" in failure.samples[0]


def test_intent_with_too_few_examples(acme_copy, settings):
    with (acme_copy / "intents.csv").open("a", encoding="utf-8") as handle:
        handle.write("my gift card is broken,gift_card\nthe gift card code fails,gift_card\n")
    failure = failed_rules(acme_copy, settings)[("intents.csv", "too_few_examples_per_intent")]
    assert failure.failed == 1
    assert failure.samples == ("gift_card: 2",)


def test_single_intent_is_refused(tmp_path, settings):
    rows = "".join(f"text number {i},only_intent\n" for i in range(50))
    (tmp_path / "intents.csv").write_text("text,intent\n" + rows, encoding="utf-8")
    assert ("intents.csv", "too_few_intents") in failed_rules(tmp_path, settings)


def test_unknown_article_id(acme_copy, settings):
    rewrite_line(acme_copy / "pairs.csv", 2, "how do I fly to the moon?,kb-moon-travel\n")
    failure = failed_rules(acme_copy, settings)[("pairs.csv", "unknown_article_id")]
    assert failure.failed == 1
    assert "line 2" in failure.samples[0] and "kb-moon-travel" in failure.samples[0]


def test_duplicate_article_id(acme_copy, settings):
    path = acme_copy / "articles.jsonl"
    first = path.read_text(encoding="utf-8").splitlines()[0]
    with path.open("a", encoding="utf-8") as handle:
        handle.write(first + "\n")
    assert ("articles.jsonl", "duplicate_article_id") in failed_rules(acme_copy, settings)


def test_invalid_utf8(acme_copy, settings):
    path = acme_copy / "intents.csv"
    lines = path.read_bytes().split(b"\n")
    lines[6] = b"caf\xe9 order is late \xff\xfe,delivery_late"
    path.write_bytes(b"\n".join(lines))
    failure = failed_rules(acme_copy, settings)[("intents.csv", "invalid_utf8")]
    assert failure.failed == 1
    assert failure.samples[0].startswith("line 7:")


def test_ten_megabyte_text_is_reported_not_crashed(acme_copy, settings):
    huge = "refund " * (10 * 1024 * 1024 // 7)
    with (acme_copy / "intents.csv").open("a", encoding="utf-8") as handle:
        handle.write(f"{huge},refund_request\n")
    with pytest.raises(ValidationFailed) as failure:
        validate_data(str(acme_copy), settings)
    message = str(failure.value)
    assert "intents.csv · text_too_long" in message
    assert "line 1026" in message
    assert len(message) < 5_000, "samples are excerpts, not the 10 MB text"


def test_file_over_the_size_limit(acme_copy, tmp_path):
    from mme_factory.settings import load_settings

    small = load_settings(
        environ={
            "MME_FACTORY_STATE_DIR": str(tmp_path / "state"),
            "MME_FACTORY_VALIDATION__MAX_FILE_BYTES": "10KiB",
        }
    )
    failures = failed_rules(acme_copy, small)
    assert ("replies.jsonl", "file_too_large") in failures


def test_unparseable_jsonl_and_csv_rows(acme_copy, settings):
    rewrite_line(acme_copy / "replies.jsonl", 4, '{"context": "hi", "reply": \n')
    rewrite_line(acme_copy / "articles.jsonl", 2, '["not", "an", "object"]\n')
    rewrite_line(acme_copy / "pairs.csv", 3, "a,b,c\n")
    failures = failed_rules(acme_copy, settings)
    assert failures[("replies.jsonl", "unparseable_row")].samples[0].startswith("line 4:")
    assert "not an object" in failures[("articles.jsonl", "unparseable_row")].samples[0]
    assert "line 3: 3 fields" in failures[("pairs.csv", "unparseable_row")].samples[0]


def test_too_few_reply_pairs(acme_copy, settings):
    path = acme_copy / "replies.jsonl"
    path.write_text("".join(path.read_text(encoding="utf-8").splitlines(True)[:10]), "utf-8")
    failure = failed_rules(acme_copy, settings)[("replies.jsonl", "too_few_rows")]
    assert "found 10" in failure.samples[0]


def test_failure_lists_every_broken_rule_at_once(acme_copy, settings):
    rewrite_line(acme_copy / "intents.csv", 5, ",order_status\n")
    rewrite_line(acme_copy / "pairs.csv", 2, "hello?,kb-nowhere\n")
    with pytest.raises(ValidationFailed) as failure:
        validate_data(str(acme_copy), settings)
    assert "failed 2 validation rule(s)" in str(failure.value)
    report = failure.value.report_markdown
    assert "`empty_text`" in report and "`unknown_article_id`" in report


def test_deeply_nested_jsonl_line_is_an_unparseable_row_not_a_crash(acme_copy, settings):
    rewrite_line(acme_copy / "replies.jsonl", 5, "[" * 100_000 + "\n")
    rewrite_line(acme_copy / "articles.jsonl", 3, '{"id": "x", "title": ' + "[" * 100_000 + "\n")
    failures = failed_rules(acme_copy, settings)
    assert "nested too deeply" in failures[("replies.jsonl", "unparseable_row")].samples[0]
    assert failures[("articles.jsonl", "unparseable_row")].samples[0].startswith("line 3:")


@pytest.mark.parametrize("separator", ["\u2028", "\u2029", "\u0085"])
def test_jsonl_text_with_unicode_line_separators_is_one_row(acme_copy, settings, separator):
    path = acme_copy / "replies.jsonl"
    record = {"context": f"first line{separator}second line", "reply": "Thanks for asking, we can."}
    rewrite_line(path, 2, json.dumps(record, ensure_ascii=False) + "\n")
    lines = path.read_text(encoding="utf-8").split("\n")
    summary = validate_customer_data(str(acme_copy), settings)
    assert not [r for r in summary.failures if r.rule == "unparseable_row"]
    assert summary.rows["replies.jsonl"] == len([line for line in lines if line.strip()])


def test_csv_text_with_unicode_line_separators_is_one_row(acme_copy, settings):
    path = acme_copy / "intents.csv"
    rewrite_line(path, 2, '"where is\u2028my order\u0085please",order_status\n')
    summary = validate_customer_data(str(acme_copy), settings)
    assert not [r for r in summary.failures if r.file == "intents.csv"]


def test_csv_with_a_duplicated_header_names_the_duplicate_column(acme_copy, settings):
    path = acme_copy / "intents.csv"
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    lines[0] = "text,text,intent\n"
    lines[1:] = [line.rstrip("\n") + ",extra\n" for line in lines[1:]]
    path.write_text("".join(lines), encoding="utf-8")
    failures = [r for r in validate_customer_data(str(acme_copy), settings).failures]
    on_intents = [r for r in failures if r.file == "intents.csv"]
    assert [r.rule for r in on_intents] == ["duplicate_column"]
    assert "'text' appears 2 times" in on_intents[0].samples[0]
