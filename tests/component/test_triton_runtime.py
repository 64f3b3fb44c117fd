"""The Triton runtime wrapper without a real server: layout checks, failures, request bodies."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from mme_factory.errors import MmeFactoryError
from mme_factory.protocol import kserve_outputs, kserve_request
from mme_factory.settings import load_settings
from mme_factory.triton import LOCAL_PYTORCH_BACKEND, TritonRuntime, TritonServer
from mme_factory.triton.runtime import LIBTORCH_SITE_FILE, site_packages


def fake_runtime(tmp_path: Path, script: str) -> TritonRuntime:
    """A server env shaped like .triton-env whose `tritonserver` is a shell script, beside the
    real models' environment."""
    models_env = TritonRuntime.from_settings(load_settings(environ={})).python_env_dir
    runtime = TritonRuntime(tmp_path / "env", models_env)
    runtime.binary.parent.mkdir(parents=True)
    runtime.binary.write_text(f"#!/bin/sh\n{script}\n")
    runtime.binary.chmod(0o755)
    runtime.python_backend.mkdir(parents=True)
    (runtime.python_backend / "triton_python_backend_stub").write_text("")
    return runtime


def test_runtime_comes_from_settings() -> None:
    settings = load_settings(
        environ={
            "MME_FACTORY_TRITON__ENV_DIR": "/opt/triton-env",
            "MME_FACTORY_TRITON__PYTHON_ENV_DIR": "/opt/models-env",
        }
    )
    runtime = TritonRuntime.from_settings(settings)
    assert runtime.env_dir == Path("/opt/triton-env")
    assert runtime.binary.name == "tritonserver"
    assert runtime.python == Path("/opt/models-env/bin/python")


def test_missing_runtime_names_the_fix(tmp_path: Path) -> None:
    with pytest.raises(MmeFactoryError, match="run `make setup`"):
        TritonRuntime(tmp_path / "nothing", tmp_path / "nothing-either").check()


def test_backend_directory_links_python_and_holds_the_pytorch_backend(tmp_path: Path) -> None:
    runtime = fake_runtime(tmp_path, "exit 0")
    backends = runtime.prepare_backends(tmp_path / "backends")
    assert (backends / "python").is_symlink()
    assert (backends / "python").resolve() == runtime.python_backend.resolve()
    assert (backends / "pytorch" / "model.py").read_bytes() == LOCAL_PYTORCH_BACKEND.read_bytes()
    assert (backends / "pytorch" / "tensor_binding.py").is_file()
    torch_site = (backends / "pytorch" / LIBTORCH_SITE_FILE).read_text().strip()
    assert torch_site == str(site_packages(runtime.env_dir))
    runtime.prepare_backends(backends)  # idempotent
    assert (backends / "python").is_symlink()


def test_server_runs_models_in_the_models_environment_only(tmp_path: Path) -> None:
    runtime = fake_runtime(tmp_path, "exit 0")
    env = runtime.environment()
    assert env["PATH"].split(":")[0] == str(runtime.python_env_dir / "bin")
    assert env["VIRTUAL_ENV"] == str(runtime.python_env_dir)
    assert "PYTHONPATH" not in env


def test_server_that_dies_at_start_raises_with_its_log(tmp_path: Path) -> None:
    runtime = fake_runtime(tmp_path, "echo 'error: no such flag' >&2; exit 3")
    server = TritonServer(runtime, tmp_path / "work", tmp_path / "triton.log")
    with pytest.raises(MmeFactoryError, match=r"exited with 3(.|\n)*no such flag"):
        server.start(timeout_s=10)
    assert server.pid is None
    server.stop()  # idempotent


def test_server_that_never_answers_is_stopped_after_the_timeout(tmp_path: Path) -> None:
    runtime = fake_runtime(tmp_path, "exec sleep 30")
    server = TritonServer(runtime, tmp_path / "work", tmp_path / "triton.log")
    with pytest.raises(MmeFactoryError, match="did not answer"):
        server.start(timeout_s=1)
    assert not server.alive


def test_kserve_request_shapes_rows_and_lists() -> None:
    body = json.loads(kserve_request({"text": ["a", "é"], "max_new_tokens": [4, 5]}))
    text, tokens = body["inputs"]
    assert text == {"name": "text", "shape": [2, 1], "datatype": "BYTES", "data": ["a", "é"]}
    assert tokens["datatype"] == "INT32"
    stop = json.loads(kserve_request({"stop": [["\n", "."], ["!", "?"]]}))["inputs"][0]
    assert stop["shape"] == [2, 2]


def test_kserve_outputs_are_shaped_arrays() -> None:
    body = json.dumps(
        {
            "outputs": [
                {"name": "embedding", "datatype": "FP32", "shape": [1, 2], "data": [0.5, 1.0]},
                {"name": "label", "datatype": "BYTES", "shape": [1, 1], "data": ["refund"]},
            ]
        }
    ).encode()
    outputs = kserve_outputs(body)
    assert outputs["embedding"].dtype == np.float32
    assert outputs["embedding"].shape == (1, 2)
    assert outputs["label"][0, 0] == "refund"
