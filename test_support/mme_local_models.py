"""Tiny Python-backend Triton models the mme_local tests build, tar and store.

`doubler` answers OUTPUT0 = 2 * INPUT0. Options make it misbehave on purpose: raise or sleep at
load (to hold a load in flight), sleep in `execute` (to hold a request in flight), or hold extra
memory (to exercise eviction).
"""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

CONFIG = """name: "{name}"
backend: "python"
max_batch_size: 0
input [ {{ name: "INPUT0" data_type: TYPE_FP32 dims: [ -1 ] }} ]
output [ {{ name: "OUTPUT0" data_type: TYPE_FP32 dims: [ -1 ] }} ]
instance_group [ {{ kind: KIND_CPU count: 1 }} ]
"""

MODEL_PY = """import time

import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def initialize(self, args):
        if {raise_at_load!r}:
            raise RuntimeError("this model refuses to load")
        time.sleep({load_s!r})
        self.ballast = np.ones({ballast_bytes} // 8, dtype=np.float64)

    def execute(self, requests):
        time.sleep({sleep_s!r})
        responses = []
        for request in requests:
            values = pb_utils.get_input_tensor_by_name(request, "INPUT0").as_numpy()
            doubled = pb_utils.Tensor("OUTPUT0", (values * {factor!r}).astype(np.float32))
            responses.append(pb_utils.InferenceResponse([doubled]))
        return responses
"""


def model_files(
    name: str = "doubler",
    *,
    raise_at_load: bool = False,
    load_s: float = 0.0,
    sleep_s: float = 0.0,
    ballast_mb: int = 0,
    factor: float = 2.0,
    with_config: bool = True,
) -> dict[str, bytes]:
    """The files of a one-model Triton repository, keyed by their path in the tarball."""
    code = MODEL_PY.format(
        raise_at_load=raise_at_load,
        load_s=load_s,
        ballast_bytes=ballast_mb * 1024 * 1024,
        sleep_s=sleep_s,
        factor=factor,
    )
    files = {f"{name}/1/model.py": code.encode()}
    if with_config:
        files[f"{name}/config.pbtxt"] = CONFIG.format(name=name).encode()
    return files


def tarball(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for path, data in files.items():
            info = tarfile.TarInfo(path)
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def model_tarball(name: str = "doubler", **options: object) -> bytes:
    return tarball(model_files(name, **options))  # type: ignore[arg-type]


def infer_body(values: list[float]) -> bytes:
    """A KServe v2 JSON request for the doubler."""
    tensor = {"name": "INPUT0", "shape": [len(values)], "datatype": "FP32", "data": values}
    return json.dumps({"inputs": [tensor]}).encode()


def output_values(body: bytes) -> list[float]:
    return json.loads(body)["outputs"][0]["data"]


def write_model(root: Path, key: str, data: bytes) -> None:
    path = root / key
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
