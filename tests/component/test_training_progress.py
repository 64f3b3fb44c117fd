"""Training shows its progress at a bounded rate, and the warnings that are noise stay quiet."""

from __future__ import annotations

import logging
import re
import warnings

import pandas as pd
import pytest
import torch

from cli.main import main
from tasks.training.base_models import load_encoder
from tasks.training.known_warnings import known_warnings, known_warnings_silenced
from tasks.training.progress import LOGGER_NAME, TrainingProgress, duration
from test_support.tiny_base_models import tiny_training_environ

PROGRESS_LINE = re.compile(
    r"classifier: step (\d+)/(\d+), loss \d+\.\d{4}, [\d.]+ s elapsed, "
    r"(about (\S+( \S+)?) left|done, evaluating)"
)


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def is_known_noise(warning: warnings.WarningMessage) -> bool:
    return any(
        issubclass(warning.category, known.category)
        and re.match(known.message, str(warning.message))
        for known in known_warnings()
    )


def test_progress_is_logged_every_interval_with_the_time_left(caplog):
    clock = FakeClock()
    progress = TrainingProgress("embedding", 100, interval_s=10.0, clock=clock)
    with caplog.at_level(logging.INFO, logger=LOGGER_NAME):
        for step in range(100):
            clock.now += 0.5
            progress.step(float(100 - step))
    lines = [record.getMessage() for record in caplog.records]
    # The first step, one line per 10 s (every 20 steps here), the last step: never one per step.
    assert [line.split(",")[0] for line in lines] == [
        f"embedding: step {n}/100" for n in (1, 21, 41, 61, 81, 100)
    ]
    assert lines[0].endswith("0.5 s elapsed, about 50s left")
    # 20 more steps took 10 s, 59 remain after step 41: about 30 s.
    assert lines[2] == "embedding: step 41/100, loss 69.5000, 20.5 s elapsed, about 30s left"
    assert lines[-1].endswith("50.0 s elapsed, done, evaluating")
    assert progress.final_loss == pytest.approx(5.5)


@pytest.mark.parametrize(
    ("seconds", "text"), [(0.4, "0s"), (59.6, "1m 00s"), (200, "3m 20s"), (3900, "1h 05m")]
)
def test_durations_read_as_minutes_and_hours(seconds, text):
    assert duration(seconds) == text


def test_known_noise_is_silenced_and_news_is_not(tiny_encoder):
    model, _ = load_encoder(str(tiny_encoder))
    example = torch.ones(1, 4, dtype=torch.long)

    def noisy_calls() -> None:
        torch.jit.trace(model.eval(), (example, example), check_trace=False, strict=False)
        assert model.is_gradient_checkpointing is False

    with warnings.catch_warnings(record=True) as heard:
        warnings.simplefilter("always")
        noisy_calls()
    # Without the filters the libraries raise these very warnings...
    assert {w.category for w in heard if is_known_noise(w)} >= {DeprecationWarning, FutureWarning}
    with warnings.catch_warnings(record=True) as heard:
        warnings.simplefilter("always")
        with known_warnings_silenced():
            noisy_calls()
            warnings.warn("`Tokenizer.encode` is deprecated", FutureWarning, stacklevel=1)
            warnings.warn("loss is NaN", RuntimeWarning, stacklevel=1)
    # ...with them, only the news is heard.
    assert [(w.category, str(w.message)) for w in heard] == [
        (FutureWarning, "`Tokenizer.encode` is deprecated"),
        (RuntimeWarning, "loss is NaN"),
    ]


def test_train_command_shows_progress_on_stderr_without_the_known_noise(
    tmp_path, tiny_encoder, acme_copy, monkeypatch, capsys, recwarn
):
    intents = pd.read_csv(acme_copy / "intents.csv", dtype=str)
    intents.groupby("intent").head(24).to_csv(acme_copy / "intents.csv", index=False)
    monkeypatch.setenv("MME_FACTORY_STATE_DIR", str(tmp_path / "state"))
    for name, value in tiny_training_environ(tiny_encoder).items():
        monkeypatch.setenv(name, value)
    code = main(["train", "--customer", "acme", "--data", str(acme_copy), "--kinds", "classifier"])
    assert code == 0
    err = capsys.readouterr().err
    found = [PROGRESS_LINE.search(line) for line in err.splitlines()]
    progress = [match for match in found if match]
    assert progress, err
    total = int(progress[0].group(2))
    assert progress[0].group(1) == "1" and progress[0].group(4)  # a time-left estimate
    assert progress[-1].group(1) == str(total) and progress[-1].group(3) == "done, evaluating"
    assert len(progress) < total  # bounded, not one line per step
    assert "classifier: exported in" in err
    assert [str(w.message) for w in recwarn if is_known_noise(w)] == []
