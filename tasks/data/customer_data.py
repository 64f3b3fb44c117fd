"""Read a customer's data files from a store into tables whose index is the file's line number.

Reading never raises on bad content: undecodable bytes become U+FFFD (caught by the UTF-8 rule)
and unparseable rows become rule failures, so validation can report every problem at once.
"""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from dataclasses import dataclass, field

import pandas as pd

from mme_factory.store import ArtifactStore

EXPECTED_COLUMNS: dict[str, tuple[str, ...]] = {
    "intents.csv": ("text", "intent"),
    "articles.jsonl": ("id", "title", "body"),
    "pairs.csv": ("query", "article_id"),
    "replies.jsonl": ("context", "reply"),
}
# Python's csv module refuses fields over 128 KiB; overlong texts must reach the length rule.
csv.field_size_limit(1 << 30)


@dataclass(frozen=True)
class RuleResult:
    """The outcome of one validation rule on one file (or on the data set as a whole)."""

    file: str
    rule: str
    description: str
    success: bool
    failed: int = 0
    checked: int = 0
    samples: tuple[str, ...] = ()


@dataclass
class CustomerFile:
    name: str
    frame: pd.DataFrame | None = None
    problems: list[RuleResult] = field(default_factory=list)


def excerpt(value: object, limit: int = 80) -> str:
    text = str(value)
    if len(text) > limit:
        text = f"{text[:limit]}… ({len(text):,} chars)"
    return repr(text)


def read_customer_file(store: ArtifactStore, name: str, max_bytes: int) -> CustomerFile:
    """Load one file; size and parse problems go into `problems` instead of raising."""
    size = store.size(name)
    if size > max_bytes:
        problem = RuleResult(
            name,
            "file_too_large",
            f"file is at most {max_bytes:,} bytes",
            False,
            size,
            max_bytes,
            (f"{size:,} bytes",),
        )
        return CustomerFile(name, problems=[problem])
    text = store.read_bytes(name).decode("utf-8-sig", errors="replace")
    parse = _parse_csv if name.endswith(".csv") else _parse_jsonl
    return parse(name, text)


def _parse_csv(name: str, text: str) -> CustomerFile:
    reader = csv.reader(io.StringIO(text, newline=""))
    rows: dict[int, list[str]] = {}
    header: list[str] | None = None
    malformed: list[str] = []
    line = 1
    try:
        for record in reader:
            start, line = line, reader.line_num + 1
            if not record:
                continue
            if header is None:
                header = [column.strip() for column in record]
                duplicated = _duplicate_columns(name, header)
                if duplicated is not None:
                    return CustomerFile(name, problems=[duplicated])
            elif len(record) != len(header):
                malformed.append(f"line {start}: {len(record)} fields, header has {len(header)}")
            else:
                rows[start] = record
    except csv.Error as error:
        problem = RuleResult(
            name,
            "unparseable_row",
            "every row is valid CSV",
            False,
            1,
            0,
            (f"line {reader.line_num}: {error}",),
        )
        return CustomerFile(name, problems=[problem])
    frame = pd.DataFrame.from_dict(rows, orient="index", columns=header or [], dtype=object)
    return _parsed_file(
        name, frame, len(rows), malformed, "every row has as many fields as the header"
    )


def _duplicate_columns(name: str, header: list[str]) -> RuleResult | None:
    duplicated = {column: count for column, count in Counter(header).items() if count > 1}
    if not duplicated:
        return None
    return RuleResult(
        name,
        "duplicate_column",
        "every column name appears once in the header",
        False,
        len(duplicated),
        len(header),
        tuple(f"{column!r} appears {count} times" for column, count in duplicated.items()),
    )


def _parse_jsonl(name: str, text: str) -> CustomerFile:
    expected = EXPECTED_COLUMNS[name]
    records: dict[int, dict[str, object]] = {}
    malformed: list[str] = []
    # JSON Lines ends a line at "\n" only: str.splitlines would also split inside strings at
    # U+2028, U+2029, U+0085 and other characters that are valid raw in JSON text.
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            if not isinstance(record, dict):
                malformed.append(f"line {number}: a JSON {type(record).__name__}, not an object")
                continue
            records[number] = {key: _as_text(record[key]) for key in expected if key in record}
        except json.JSONDecodeError as error:
            malformed.append(f"line {number}: {error.msg} at column {error.colno}")
        except RecursionError:
            malformed.append(f"line {number}: arrays or objects nested too deeply")
    present = [key for key in expected if any(key in record for record in records.values())]
    frame = pd.DataFrame.from_dict(records, orient="index", columns=present, dtype=object)
    return _parsed_file(name, frame, len(records), malformed, "every line is one JSON object")


def _parsed_file(
    name: str, frame: pd.DataFrame, parsed: int, malformed: list[str], rule: str
) -> CustomerFile:
    """The `parsed` rows in `frame`, and one `unparseable_row` failure of `rule` naming the
    `malformed` ones."""
    problems = []
    if malformed:
        problems.append(
            RuleResult(
                name,
                "unparseable_row",
                rule,
                False,
                len(malformed),
                parsed + len(malformed),
                tuple(malformed),
            )
        )
    return CustomerFile(name, frame, problems)


def _as_text(value: object) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False) if isinstance(value, dict | list) else str(value)
