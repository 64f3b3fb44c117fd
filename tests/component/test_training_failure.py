"""A kind that fails after training keeps what it learnt: metrics, gate, timings, the failure."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from cli.main import main
from mme_factory.model_kinds import ModelKind
from mme_factory.settings import load_settings
from tasks.packaging.package_triton import package_triton
from tasks.packaging.triton_config import PackagingError
from tasks.training.export_torchscript import ExportParityError
from tasks.training.train_customer import train_customer
from tasks.training.training_record import TrainingFailed
from test_support.failing_export import failing_export_environ, keep_first_replies
from test_support.tiny_base_models import tiny_training_environ
from test_support.tiny_exports import write_tiny_run


@pytest.fixture
def small_acme(acme_copy: Path) -> Path:
    """The sample customer cut down, so tiny models train in seconds."""
    intents = pd.read_csv(acme_copy / "intents.csv", dtype=str)
    intents.groupby("intent").head(24).to_csv(acme_copy / "intents.csv", index=False)
    return keep_first_replies(acme_copy)


def only_run(state: Path) -> Path:
    (run,) = (state / "runs" / "acme").iterdir()
    return run


def test_failed_export_keeps_metrics_gate_and_timings(tmp_path, tiny_encoder, small_acme):
    environ = {"MME_FACTORY_STATE_DIR": str(tmp_path / "state")}
    settings = load_settings(environ={**environ, **failing_export_environ(tiny_encoder)})
    with pytest.raises(TrainingFailed, match="autocomplete: export failed") as raised:
        train_customer("acme", str(small_acme), settings, [ModelKind.AUTOCOMPLETE])
    assert isinstance(raised.value.__cause__, ExportParityError)

    run = only_run(tmp_path / "state")
    metadata = json.loads((run / "autocomplete" / "metadata.json").read_text())
    assert metadata["status"] == "failed"
    assert metadata["failure"]["stage"] == "export"
    assert metadata["failure"]["error"] == "ExportParityError"
    assert "exported output differs from eager" in metadata["failure"]["message"]
    assert metadata["metrics"]["fine_tuned"]["next_word_accuracy"] >= 0
    assert metadata["metrics"]["unigram"]["perplexity_per_word"] > 1
    assert metadata["gate"]["decision"] in ("challenger", "baseline")
    timings = metadata["timings"]
    assert timings["train_s"] > 0 and timings["export_s"] > 0
    assert timings["total_s"] >= timings["train_s"] + timings["export_s"]
    assert metadata["smoke_inputs"]

    record = json.loads((run / "run.json").read_text())
    outcome = record["kinds"]["autocomplete"]
    assert outcome["status"] == "failed" and outcome["failure"] == metadata["failure"]
    assert outcome["metrics"] == metadata["metrics"] and outcome["gate"] == metadata["gate"]
    assert outcome["timings"] == timings and outcome.get("steps") == metadata.get("steps")
    assert record["total_s"] >= timings["total_s"]

    assert not (run / "autocomplete" / "export.json").exists()
    with pytest.raises(PackagingError, match="holds no exported model"):
        package_triton(run, settings)


def test_training_that_raises_is_recorded_and_the_command_says_where(
    tmp_path, tiny_encoder, small_acme, monkeypatch, capsys
):
    environ = {
        "MME_FACTORY_STATE_DIR": str(tmp_path / "state"),
        **tiny_training_environ(tiny_encoder),
        "MME_FACTORY_TRAINING__CLASSIFIER__BASE_MODEL": str(tmp_path / "no-such-encoder"),
    }
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    code = main(["train", "--customer", "acme", "--data", str(small_acme), "--kinds", "classifier"])
    assert code == 1
    out, err = capsys.readouterr()
    run = only_run(tmp_path / "state")
    assert str(run) in out
    assert "classifier" in out and "failed" in out
    assert "error: classifier failed at train: BaseModelNotFound" in err
    assert str(run / "classifier" / "metadata.json") in err

    metadata = json.loads((run / "classifier" / "metadata.json").read_text())
    assert metadata["status"] == "failed" and metadata["failure"]["stage"] == "train"
    assert "no-such-encoder" in metadata["failure"]["message"]
    assert "metrics" not in metadata and metadata["timings"]["total_s"] >= 0
    assert json.loads((run / "run.json").read_text())["kinds"]["classifier"]["status"] == "failed"


def test_a_kind_not_recorded_as_exported_is_never_packaged(tmp_path):
    settings = load_settings(environ={})
    run = write_tiny_run(tmp_path / "state", "acme", "run-1", seed=1)
    statuses = {"embedding": "failed", "classifier": "exporting", "autocomplete": "exported"}
    record = {
        "customer": "acme",
        "run_id": "run-1",
        "kinds": {kind: {"status": status} for kind, status in statuses.items()},
    }
    (run / "run.json").write_text(json.dumps(record), encoding="utf-8")
    # Both embedding roles and the classifier left an export.json before their kind stopped.
    assert (run / "embedding" / "query" / "export.json").is_file()
    summary = package_triton(run, settings, output_dir=tmp_path / "out")
    assert [package.target for package in summary.packages] == ["autocomplete"]
