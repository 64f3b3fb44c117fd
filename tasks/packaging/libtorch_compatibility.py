"""Check a run's TorchScript exports under the libtorch of the serving image's Triton release.

The exporter's torch is newer than the image's libtorch, and TorchScript written by a newer
torch may not load in an older one. So every `model.pt` of a run is loaded by the image's torch
version, in its own cached environment (`<cache>/torch-<version>/`, a multi-GB install made once),
run on the export's recorded parity batches (`parity.pt`) and compared with the eager outputs
recorded at export time.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from mme_factory.errors import MmeFactoryError
from tasks.training.export_torchscript import PARITY_FILE

PROBE = Path(__file__).resolve().with_name("libtorch_probe.py")
INSTALL_TIMEOUT_S = 1800
PROBE_TIMEOUT_S = 300


class LibtorchCheckError(MmeFactoryError):
    """The check environment cannot be built, or a run holds nothing to check."""


@dataclass(frozen=True)
class ProbeResult:
    export: str  # relative to the run: "embedding/query"
    torch: str
    loaded: bool
    max_abs_diff: float | None
    tolerance: float | None
    error: str | None

    @property
    def passed(self) -> bool:
        return (
            self.loaded
            and self.error is None
            and self.max_abs_diff is not None
            and self.tolerance is not None
            and self.max_abs_diff <= self.tolerance
        )


def check_environment(cache_dir: Path, torch_version: str) -> Path:
    """The Python of a cached environment holding torch==`torch_version`; built when missing."""
    env = cache_dir / f"torch-{torch_version}"
    python = env / "bin" / "python"
    stamp = env / ".installed"
    if stamp.is_file() and python.is_file():
        return python
    print(f"building {env} (torch=={torch_version}, a large download, once)", file=sys.stderr)
    steps = [
        [sys.executable, "-m", "venv", "--clear", str(env)],
        [str(python), "-m", "pip", "install", "--quiet", f"torch=={torch_version}", "numpy<2"],
    ]
    for step in steps:
        try:
            subprocess.run(step, check=True, timeout=INSTALL_TIMEOUT_S)
        except (OSError, subprocess.SubprocessError) as error:
            raise LibtorchCheckError(f"cannot build {env}: {error}") from None
    stamp.write_text(torch_version + "\n", encoding="utf-8")
    return python


def torchscript_exports(run_dir: Path) -> list[Path]:
    """Every exported model directory of a run that holds a TorchScript `model.pt`."""
    found = sorted(path.parent for path in run_dir.rglob("model.pt") if "package" not in path.parts)
    exports = [path for path in found if (path / "export.json").is_file()]
    if not exports:
        raise LibtorchCheckError(f"{run_dir} holds no TorchScript export (<kind>/.../model.pt)")
    return exports


def probe_export(python: Path, export_dir: Path, run_dir: Path) -> ProbeResult:
    label = str(export_dir.relative_to(run_dir))
    parity = export_dir / PARITY_FILE
    if not parity.is_file():
        return ProbeResult(label, "-", False, None, None, f"no {PARITY_FILE}: train the run again")
    command = [str(python), "-I", str(PROBE), str(export_dir / "model.pt"), str(parity)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=PROBE_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return ProbeResult(label, "-", False, None, None, f"no answer in {PROBE_TIMEOUT_S} s")
    if done.returncode != 0:
        return ProbeResult(label, "-", False, None, None, done.stderr.strip()[-500:])
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    return ProbeResult(
        export=label,
        torch=str(answer["torch"]),
        loaded=bool(answer["loaded"]),
        max_abs_diff=answer.get("max_abs_diff"),
        tolerance=answer.get("tolerance"),
        error=answer.get("error"),
    )


def check_run(run_dir: Path, python: Path) -> list[ProbeResult]:
    return [probe_export(python, export, run_dir) for export in torchscript_exports(run_dir)]


def report_lines(run_dir: Path, results: list[ProbeResult]) -> list[str]:
    lines = [
        f"TorchScript exports of {run_dir} under the serving image's libtorch",
        f"{'export':<20} {'torch':<14} {'loads':<6} {'max |diff|':>11} {'tolerance':>10}  result",
    ]
    for r in results:
        diff = f"{r.max_abs_diff:.2e}" if r.max_abs_diff is not None else "-"
        tolerance = f"{r.tolerance:.0e}" if r.tolerance is not None else "-"
        verdict = "ok" if r.passed else f"FAILED {r.error or 'outputs differ'}"
        loads = "yes" if r.loaded else "no"
        lines.append(
            f"{r.export:<20} {r.torch:<14} {loads:<6} {diff:>11} {tolerance:>10}  {verdict}"
        )
    return lines
