"""The previous autocomplete design, rebuilt for the serving benchmark's comparison: one
Python-backend model importing torch (bench/baselines/python_backend_generator.py) in a models'
environment that has torch, which the serving image no longer provides.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import torch

from mme_factory.triton import TritonRuntime
from tasks.training.autocomplete.export import reference_decoder
from tasks.training.autocomplete.llama_decoder import __file__ as LLAMA_DECODER
from triton_models.autocomplete.code.v2.completion_text import __file__ as COMPLETION_TEXT

BASELINE_MODEL = Path(__file__).resolve().parent / "baselines" / "python_backend_generator.py"
# What the previous serving image gave Python-backend models (its lock's pins).
PACKAGES = ("torch==2.13.0", "numpy==1.26.4", "tokenizers==0.22.1")
INSTALL_TIMEOUT_S = 900


class BaselineRuntime(TritonRuntime):
    """The local Triton with a models' environment that is not the serving image's."""

    def check(self) -> None:
        for path in (self.binary, self.python):
            if not path.exists():
                raise FileNotFoundError(f"{path} is missing: run `make setup`")


def baseline_environment(directory: Path) -> Path:
    """A venv with the previous serving image's packages, made once (torch's CPU wheel)."""
    marker = directory / ".installed"
    if marker.is_file():
        return directory
    shutil.rmtree(directory, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "venv", str(directory)], check=True, timeout=120)
    pip = [str(directory / "bin" / "python"), "-m", "pip", "install", "--quiet", *PACKAGES]
    print(f"installing the baseline's models' environment in {directory} ...", flush=True)
    subprocess.run(pip, check=True, timeout=INSTALL_TIMEOUT_S)
    marker.touch()
    return directory


def baseline_repository(export_dir: Path, directory: Path, max_batch_size: int) -> Path:
    """A Triton model directory of the previous design from an export of the current one."""
    model = directory / "generator"
    version = model / "1"
    version.mkdir(parents=True, exist_ok=True)
    decoder = reference_decoder(export_dir)
    torch.save(decoder.state_dict(), version / "weights.pt")
    shutil.copyfile(export_dir / "config.json", version / "config.json")
    shutil.copyfile(export_dir / "tokenizer.json", version / "tokenizer.json")
    shutil.copyfile(BASELINE_MODEL, version / "model.py")
    shutil.copyfile(LLAMA_DECODER, version / "llama_decoder.py")
    shutil.copyfile(COMPLETION_TEXT, version / "completion_text.py")
    export = _export_fields(export_dir)
    (model / "config.pbtxt").write_text(_config(export, max_batch_size), encoding="utf-8")
    return directory


def _export_fields(export_dir: Path) -> dict[str, object]:
    return json.loads((export_dir / "export.json").read_text(encoding="utf-8"))


def _config(export: dict[str, object], max_batch_size: int) -> str:
    def parameter(key: str, value: object) -> str:
        escaped = str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        return f'parameters {{ key: "{key}" value {{ string_value: "{escaped}" }} }}'

    values = {
        "max_length": export["max_length"],
        "eos_token_id": export["eos_token_id"],
        "default_max_new_tokens": 32,
        "default_time_limit_ms": 2000,
        "prompt_format": export["prompt_format"],
        "stop": json.dumps(export["stop"]),
    }
    return "\n".join(
        [
            'name: "generator"',
            'backend: "python"',
            f"max_batch_size: {max_batch_size}",
            'input [ { name: "text" data_type: TYPE_STRING dims: [ 1 ] },',
            '  { name: "max_new_tokens" data_type: TYPE_INT32 dims: [ 1 ] optional: true } ]',
            'output [ { name: "completion" data_type: TYPE_STRING dims: [ 1 ] },',
            '  { name: "finish_reason" data_type: TYPE_STRING dims: [ 1 ] } ]',
            "instance_group [ { count: 1 kind: KIND_CPU } ]",
            "dynamic_batching { max_queue_delay_microseconds: 0 }",
            *(parameter(key, value) for key, value in values.items()),
            "",
        ]
    )
