"""The local Triton is as strict as the serving image: its packages, its libtorch tensor binding.

Model repositories here are written by hand, bypassing the packager's checks, to show what the
server itself does with them: the same thing the serving endpoint would.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from mme_factory.protocol import kserve_outputs, kserve_request
from mme_factory.serving_image import serving_packages
from mme_factory.settings import load_settings
from mme_factory.triton import TritonError, TritonRuntime, TritonServer
from mme_factory.triton.model_environment import compare_with_serving_image

pytestmark = pytest.mark.integration

IMPORTING_MODEL = """
import numpy as np
import triton_python_backend_utils as pb_utils
import {module}


class TritonPythonModel:
    def execute(self, requests):
        return [
            pb_utils.InferenceResponse(output_tensors=[
                pb_utils.Tensor("y", pb_utils.get_input_tensor_by_name(r, "x").as_numpy())
            ])
            for r in requests
        ]
"""


class Subtract(torch.nn.Module):
    def forward(self, minuend: torch.Tensor, subtrahend: torch.Tensor) -> torch.Tensor:
        return minuend - subtrahend


def tensors(section: str, names: list[str]) -> str:
    items = ", ".join(f'{{ name: "{n}" data_type: TYPE_FP32 dims: [ -1 ] }}' for n in names)
    return f"{section} [ {items} ]"


def write_model(root: Path, name: str, head: str, files: dict[str, bytes]) -> Path:
    """`root/<name>/model/<name>/`: a one-model TargetModel as SageMaker extracts it."""
    model = root / name / "model" / name
    (model / "1").mkdir(parents=True)
    (model / "config.pbtxt").write_text(f'name: "{name}"\n{head}\n', encoding="utf-8")
    for file, content in files.items():
        (model / "1" / file).write_bytes(content)
    return model.parent


def libtorch_model(
    root: Path,
    name: str,
    inputs: list[str],
    outputs: list[str],
    parameters: dict[str, str] | None = None,
) -> Path:
    path = root / f"{name}.pt"
    torch.jit.save(torch.jit.script(Subtract()), str(path))
    head = (
        'platform: "pytorch_libtorch"\nmax_batch_size: 8\n'
        f"{tensors('input', inputs)}\n{tensors('output', outputs)}\n"
        "instance_group [ { kind: KIND_CPU count: 1 } ]"
    )
    for key, value in (parameters or {}).items():
        head += f'\nparameters {{ key: "{key}" value: {{ string_value: "{value}" }} }}'

    return write_model(root, name, head, {"model.pt": path.read_bytes()})


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TritonServer]:
    work = tmp_path_factory.mktemp("triton")
    runtime = TritonRuntime.from_settings(load_settings(environ={}))
    triton = TritonServer(runtime, work, work / "triton.log")
    triton.start(timeout_s=60)
    try:
        yield triton
    finally:
        triton.stop()
    assert not triton.alive


def infer(server: TritonServer, name: str, inputs: dict[str, list[list[float]]]) -> np.ndarray:
    status, _, body = server.invoke(name, kserve_request(inputs))
    assert status == 200, body.decode(errors="replace")
    return next(iter(kserve_outputs(body).values()))


def test_models_environment_is_exactly_the_serving_image_list() -> None:
    runtime = TritonRuntime.from_settings(load_settings(environ={}))
    difference = compare_with_serving_image(runtime.python)
    assert difference.empty, difference.describe()
    packages = {package.name for package in serving_packages()}
    assert {"numpy", "tokenizers"} <= packages and "torch" not in packages


@pytest.mark.parametrize(
    "module",
    [
        "zmq",  # in the Triton server's own environment (nvidia-pytriton needs it)
        "transformers",  # in the pipeline's environment
        "psutil",  # in both
        "torch",  # the emulated libtorch backend's, never a Python step's
    ],
)
def test_a_python_step_importing_what_the_image_lacks_fails_to_load(
    server: TritonServer, tmp_path: Path, module: str
) -> None:
    head = f'backend: "python"\nmax_batch_size: 8\n{tensors("input", ["x"])}\n' + tensors(
        "output", ["y"]
    )
    source = IMPORTING_MODEL.format(module=module).encode()
    url = write_model(tmp_path, f"imports-{module}", head, {"model.py": source})
    with pytest.raises(TritonError, match=rf"No module named '{module}'"):
        server.load(f"imports-{module}", url)


def test_a_python_step_importing_the_serving_image_packages_loads(
    server: TritonServer, tmp_path: Path
) -> None:
    head = f'backend: "python"\nmax_batch_size: 8\n{tensors("input", ["x"])}\n' + tensors(
        "output", ["y"]
    )
    source = IMPORTING_MODEL.format(module="tokenizers, numpy").encode()
    server.load(
        "imports-serving", write_model(tmp_path, "imports-serving", head, {"model.py": source})
    )
    assert infer(server, "imports-serving", {"x": [[1.5, 2.5]]}).tolist() == [[1.5, 2.5]]


def test_libtorch_inputs_bind_by_forward_argument_name_not_config_order(
    server: TritonServer, tmp_path: Path
) -> None:
    url = libtorch_model(tmp_path, "by-name", ["subtrahend", "minuend"], ["difference__0"])
    server.load("by-name", url)
    answer = infer(server, "by-name", {"subtrahend": [[1.0, 2.0]], "minuend": [[10.0, 20.0]]})
    assert answer.tolist() == [[9.0, 18.0]]


def test_libtorch_inputs_bind_by_named_index(server: TritonServer, tmp_path: Path) -> None:
    url = libtorch_model(tmp_path, "by-index", ["second__1", "first__0"], ["difference__0"])
    server.load("by-index", url)
    answer = infer(server, "by-index", {"second__1": [[1.0]], "first__0": [[5.0]]})
    assert answer.tolist() == [[4.0]]


def test_libtorch_input_count_other_than_forward_fails_to_load(
    server: TritonServer, tmp_path: Path
) -> None:
    url = libtorch_model(tmp_path, "one-input", ["minuend"], ["difference__0"])
    with pytest.raises(TritonError, match="configuration expects 1 inputs, model provides 2"):
        server.load("one-input", url)


def test_libtorch_output_index_beyond_what_forward_returns_fails_the_request(
    server: TritonServer, tmp_path: Path
) -> None:
    url = libtorch_model(tmp_path, "far-output", ["minuend", "subtrahend"], ["difference__1"])
    server.load("far-output", url)
    body = kserve_request({"minuend": [[1.0]], "subtrahend": [[1.0]]})
    status, _, answer = server.invoke("far-output", body)
    assert status != 200
    assert b"element 1 but forward returned 1 tensor" in answer


def test_a_libtorch_parameter_the_backend_cannot_read_fails_to_load(
    server: TritonServer, tmp_path: Path
) -> None:
    url = libtorch_model(
        tmp_path,
        "bad-flag",
        ["minuend", "subtrahend"],
        ["difference__0"],
        {"INFERENCE_MODE": "yes"},
    )
    with pytest.raises(TritonError, match="INFERENCE_MODE: failed to convert 'yes' to boolean"):
        server.load("bad-flag", url)


def test_libtorch_thread_counts_apply_to_the_model(server: TritonServer, tmp_path: Path) -> None:
    parameters = {"INTRA_OP_THREAD_COUNT": "1", "DISABLE_OPTIMIZED_EXECUTION": "on"}
    url = libtorch_model(tmp_path, "one-thread", ["minuend", "subtrahend"], ["d__0"], parameters)
    server.load("one-thread", url)
    assert infer(server, "one-thread", {"minuend": [[3.0]], "subtrahend": [[1.0]]}).tolist() == [
        [2.0]
    ]
    loaded = [line for line in server.log_tail(20_000).splitlines() if "one-thread/1" in line]
    assert loaded and "1 intra-op" in loaded[-1]
    assert "optimized_execution False" in loaded[-1]


def test_inter_op_thread_count_is_taken_once_per_server(
    server: TritonServer, tmp_path: Path
) -> None:
    names = (["minuend", "subtrahend"], ["difference__0"])
    parameters = {"INTER_OP_THREAD_COUNT": "1"}
    server.load("interop-first", libtorch_model(tmp_path, "interop-first", *names, parameters))
    second = libtorch_model(tmp_path, "interop-second", *names, parameters)
    with pytest.raises(TritonError, match="remove INTER_OP_THREAD_COUNT"):
        server.load("interop-second", second)
    without = libtorch_model(tmp_path, "interop-none", *names)
    server.load("interop-none", without)
