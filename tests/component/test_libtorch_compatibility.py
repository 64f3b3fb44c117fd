"""The TorchScript compatibility check: recorded parity, the probe, the report.

CI has no second torch, so the probe runs under the pipeline's own interpreter here; `make
check-libtorch` runs the same code under the serving image's libtorch version.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

from cli.main import main
from mme_factory.serving_image import ServingImageError, image_libtorch
from tasks.packaging.libtorch_compatibility import (
    LibtorchCheckError,
    check_run,
    report_lines,
    torchscript_exports,
)
from tasks.training.export_torchscript import PARITY_FILE, check_parity, parity_batches

PIPELINE_PYTHON = Path(sys.executable)


class Scale(torch.nn.Module):
    def __init__(self, factor: float) -> None:
        super().__init__()
        self.factor = factor

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return (input_ids * attention_mask).float() * self.factor


def export(run: Path, name: str, module: torch.nn.Module, recorded: torch.nn.Module) -> Path:
    """An export directory whose parity file holds `recorded`'s outputs."""
    directory = run / name
    directory.mkdir(parents=True)
    torch.jit.save(torch.jit.script(module), str(directory / "model.pt"))
    check_parity(name, recorded, recorded, parity_batches(100, 16), 1e-4, directory / PARITY_FILE)
    (directory / "export.json").write_text(json.dumps({"kind": "embedding"}), encoding="utf-8")
    return directory


def test_parity_file_holds_the_batches_and_eager_outputs(tmp_path: Path) -> None:
    directory = export(tmp_path, "embedding/query", Scale(2.0), Scale(2.0))
    parity = torch.load(directory / PARITY_FILE, weights_only=True)
    assert len(parity["batches"]) == len(parity["outputs"]) == 3
    first = parity["batches"][0]
    torch.testing.assert_close(parity["outputs"][0], Scale(2.0)(**first))


def test_exports_that_match_their_record_pass(tmp_path: Path) -> None:
    export(tmp_path, "embedding/query", Scale(2.0), Scale(2.0))
    export(tmp_path, "classifier", Scale(3.0), Scale(3.0))
    results = check_run(tmp_path, PIPELINE_PYTHON)
    assert [r.export for r in results] == ["classifier", "embedding/query"]
    assert all(r.passed and r.torch == torch.__version__ for r in results)
    assert report_lines(tmp_path, results)[-1].endswith("ok")


def test_an_export_that_differs_from_its_record_fails(tmp_path: Path) -> None:
    export(tmp_path, "classifier", Scale(3.0), Scale(3.5))
    (result,) = check_run(tmp_path, PIPELINE_PYTHON)
    assert result.loaded and not result.passed
    assert result.max_abs_diff is not None and result.max_abs_diff > 1e-4


def test_an_unloadable_file_and_a_missing_record_fail_with_the_reason(tmp_path: Path) -> None:
    broken = export(tmp_path, "classifier", Scale(1.0), Scale(1.0))
    (broken / "model.pt").write_bytes(b"not a zip archive")
    unrecorded = export(tmp_path, "embedding/query", Scale(1.0), Scale(1.0))
    (unrecorded / PARITY_FILE).unlink()
    results = {r.export: r for r in check_run(tmp_path, PIPELINE_PYTHON)}
    assert not results["classifier"].loaded
    assert "RuntimeError" in str(results["classifier"].error)
    assert "no parity.pt" in str(results["embedding/query"].error)


def test_a_run_without_torchscript_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(LibtorchCheckError, match="holds no TorchScript export"):
        torchscript_exports(tmp_path)


def test_the_image_libtorch_comes_from_the_triton_version() -> None:
    assert image_libtorch("24.09") == "2.5.0"
    with pytest.raises(ServingImageError, match="--torch-version"):
        image_libtorch("19.01")


def test_command_exits_non_zero_when_an_export_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    export(tmp_path / "run", "classifier", Scale(3.0), Scale(4.0))
    environment = tmp_path / "cache" / f"torch-{torch.__version__}"
    (environment / "bin").mkdir(parents=True)
    python = environment / "bin" / "python"
    python.write_text(f'#!/bin/sh\nexec "{PIPELINE_PYTHON}" "$@"\n')
    python.chmod(0o755)
    (environment / ".installed").write_text(torch.__version__)
    arguments = ["check-libtorch", "--run-dir", str(tmp_path / "run")]
    arguments += ["--torch-version", torch.__version__, "--cache-dir", str(tmp_path / "cache")]
    assert main(arguments) == 1
    assert "1 of 1 exports would not serve" in capsys.readouterr().out
