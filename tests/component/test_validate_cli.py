"""`mme-factory validate`: exit 0 on the sample customer, non-zero with the rule named otherwise."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from cli.main import main
from test_support.paths import ACME


def _append(name: str, text: str) -> Callable[[Path], None]:
    def breaker(data: Path) -> None:
        with (data / name).open("a", encoding="utf-8") as handle:
            handle.write(text)

    return breaker


def _replace_header(data: Path) -> None:
    path = data / "intents.csv"
    path.write_text(path.read_text(encoding="utf-8").replace("text,intent", "text,label", 1))


def _bad_bytes(data: Path) -> None:
    with (data / "pairs.csv").open("ab") as handle:
        handle.write(b"where is my r\xe9fund?,kb-refund-timing\n")


BREAKS: dict[str, tuple[Callable[[Path], None], str, str]] = {
    "missing file": (
        lambda data: (data / "replies.jsonl").unlink(),
        "missing_file",
        "autocomplete needs",
    ),
    "missing column": (_replace_header, "missing_column", "missing ['intent']"),
    "empty text": (_append("intents.csv", " ,order_status\n"), "empty_text", "line 1026"),
    "duplicate flood": (
        _append("intents.csv", "help me,order_status\n" * 100),
        "duplicate_rows",
        "line 1026",
    ),
    "too few examples": (
        _append("intents.csv", "gift card?,gift_card\n"),
        "too_few_examples",
        "gift_card: 1",
    ),
    "unknown article": (
        _append("pairs.csv", "help?,kb-unknown\n"),
        "unknown_article_id",
        "line 386",
    ),
    "invalid utf-8": (_bad_bytes, "invalid_utf8", "line 386"),
    "10 MB text": (
        _append("intents.csv", "x" * 10_485_760 + ",order_status\n"),
        "text_too_long",
        "line 1026",
    ),
}


@pytest.fixture
def cli_env(tmp_path, monkeypatch):
    monkeypatch.setenv("MME_FACTORY_STATE_DIR", str(tmp_path / "state"))
    return tmp_path


def test_sample_customer_exits_zero(cli_env, capsys):
    assert main(["validate", "--data", str(ACME)]) == 0
    out = capsys.readouterr().out
    assert "kinds with data: embedding, classifier, autocomplete" in out


@pytest.mark.parametrize("case", sorted(BREAKS))
def test_broken_copy_exits_non_zero_naming_the_rule(case, cli_env, acme_copy, capsys):
    breaker, rule, where = BREAKS[case]
    kinds = ["--kinds", "all"] if case == "missing file" else []
    breaker(acme_copy)
    assert main(["validate", "--data", str(acme_copy), *kinds]) == 1
    err = capsys.readouterr().err
    assert rule in err
    assert where in err
    assert "Traceback" not in err


def test_json_summary(cli_env, capsys):
    assert main(["validate", "--data", str(ACME), "--kinds", "classifier", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["passed"] is True
    assert summary["kinds_validated"] == ["classifier"]
    assert Path(summary["report"]).is_file()


def test_unknown_kind_is_a_usage_error(cli_env, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["validate", "--data", str(ACME), "--kinds", "translator"])
    assert exit_.value.code == 2
    assert "unknown model kind" in capsys.readouterr().err


def test_console_script_reports_without_traceback(cli_env, acme_copy):
    (acme_copy / "intents.csv").write_text("text,intent\n,x\n", encoding="utf-8")
    script = Path(sys.executable).with_name("mme-factory")
    result = subprocess.run(
        [str(script), "validate", "--data", str(acme_copy), "--kinds", "classifier"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 1
    assert "empty_text" in result.stderr and "too_few_intents" in result.stderr
    assert "Traceback" not in result.stderr
