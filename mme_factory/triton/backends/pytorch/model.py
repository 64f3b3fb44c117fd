"""A Python-based Triton backend named `pytorch`: runs a `pytorch_libtorch` model's `model.pt`.

The Triton build in nvidia-pytriton has no libtorch backend, so the local server installs this
file as `<backend dir>/pytorch/model.py`. A model whose config says
`platform: "pytorch_libtorch"` then loads unchanged, as it would on the production container,
and its tensors bind as the real backend binds them (tensor_binding.py): inputs by `forward`
argument name, else by `<name>__<index>`, else in config order; outputs by `<name>__<index>`,
else in config order. Requests with equal input shapes are stacked into one forward call, which
is what Triton's dynamic batcher does for the real libtorch backend.

The backend's config parameters are read and refused as it reads them (libtorch_parameters.py)
and have the same effect: optimized execution, inference mode, JIT profiling, JIT executor and
tensor fuser are set before every forward; INTRA_OP_THREAD_COUNT and INTER_OP_THREAD_COUNT at
load. In the production server those thread pools are the server process's, shared by every
libtorch model, and libtorch takes INTER_OP_THREAD_COUNT once per process: a second model
carrying it fails to load here too. Here each model has its own process, so an
INTRA_OP_THREAD_COUNT applies to its own model only.

torch comes from the server's environment (named in libtorch_site_packages.txt beside this
file), not the models' one: the real backend brings its own libtorch too.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np
import triton_python_backend_utils as pb_utils

_HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(_HERE))
sys.path.insert(0, (_HERE / "libtorch_site_packages.txt").read_text("utf-8").strip())

import torch  # noqa: E402
from libtorch_parameters import (  # noqa: E402
    LibtorchParameters,
    ParameterError,
    parse_parameters,
)
from tensor_binding import BindingError, bind_inputs, bind_outputs  # noqa: E402

_NUMPY_TYPES = {
    "TYPE_BOOL": np.bool_,
    "TYPE_INT32": np.int32,
    "TYPE_INT64": np.int64,
    "TYPE_FP16": np.float16,
    "TYPE_FP32": np.float32,
    "TYPE_FP64": np.float64,
}


class TritonPythonModel:
    def initialize(self, args: dict[str, str]) -> None:
        config = json.loads(args["model_config"])
        self.input_names = [item["name"] for item in config["input"]]
        self.outputs = [
            (item["name"], _NUMPY_TYPES[item["data_type"]]) for item in config["output"]
        ]
        self.batched = int(config.get("max_batch_size", 0)) > 0
        on_gpu = args.get("model_instance_kind") == "GPU"
        self.device = torch.device(f"cuda:{args['model_instance_device_id']}" if on_gpu else "cpu")
        parameters = {k: v["string_value"] for k, v in config.get("parameters", {}).items()}
        try:
            self.settings = parse_parameters(parameters)
        except ParameterError as error:
            raise pb_utils.TritonModelException(f"model '{config['name']}': {error}") from None
        _set_thread_pools(config["name"], self.settings)
        filename = config.get("default_model_filename") or "model.pt"
        path = Path(args["model_repository"]) / args["model_version"] / filename
        self.module = torch.jit.load(str(path), map_location=self.device).eval()
        arguments = [a.name for a in self.module.forward.schema.arguments[1:]]  # after self
        try:
            inputs = bind_inputs(config["name"], self.input_names, arguments)
        except BindingError as error:
            raise pb_utils.TritonModelException(str(error)) from None
        self.input_positions = [inputs.positions[name] for name in self.input_names]
        self.output_positions = bind_outputs([name for name, _ in self.outputs]).positions
        pb_utils.Logger.log_info(
            f"pytorch backend: {path} on {self.device}, {torch.get_num_threads()} intra-op / "
            f"{torch.get_num_interop_threads()} inter-op threads; {self.settings.describe()}"
        )

    def execute(self, requests: list[Any]) -> list[Any]:
        arrays = [
            [pb_utils.get_input_tensor_by_name(r, n).as_numpy() for n in self.input_names]
            for r in requests
        ]
        results: list[Any] = [None] * len(requests)
        groups: dict[tuple, list[int]] = {}
        for index, inputs in enumerate(arrays):
            key = tuple(a.shape for a in inputs) if self.batched else (index,)
            groups.setdefault(key, []).append(index)
        for indices in groups.values():
            try:
                outputs = self._forward([arrays[i] for i in indices])
            except Exception as error:  # one failing group must not fail the others
                for i in indices:
                    results[i] = pb_utils.InferenceResponse(error=pb_utils.TritonError(str(error)))
                continue
            for i, response_outputs in zip(indices, outputs, strict=True):
                results[i] = pb_utils.InferenceResponse(output_tensors=response_outputs)
        return results

    def _forward(self, group: list[list[np.ndarray]]) -> list[list[Any]]:
        sizes = [inputs[0].shape[0] for inputs in group] if self.batched else [1]
        stacked = [
            np.concatenate([inputs[k] for inputs in group]) if self.batched else group[0][k]
            for k in range(len(self.input_names))
        ]
        _set_jit_modes(self.settings)
        with torch.inference_mode(self.settings.inference_mode), torch.no_grad():
            tensors = [torch.from_numpy(np.ascontiguousarray(a)).to(self.device) for a in stacked]
            ordered: list[Any] = [None] * len(tensors)
            for position, tensor in zip(self.input_positions, tensors, strict=True):
                ordered[position] = tensor
            produced = self.module(*ordered)
            if isinstance(produced, torch.Tensor):
                produced = (produced,)
            arrays = [
                self._output(produced, name).detach().cpu().numpy() for name, _ in self.outputs
            ]
        responses = []
        start = 0
        for size in sizes:
            end = start + size if self.batched else None
            responses.append(
                [
                    pb_utils.Tensor(
                        name, np.ascontiguousarray(array[start:end].astype(dtype, copy=False))
                    )
                    for (name, dtype), array in zip(self.outputs, arrays, strict=True)
                ]
            )
            start += size
        return responses

    def _output(self, produced: tuple[Any, ...], name: str) -> Any:
        position = self.output_positions[name]
        if position >= len(produced):
            raise IndexError(
                f"output '{name}' asks for element {position} but forward returned "
                f"{len(produced)} tensor(s)"
            )
        return produced[position]


def _set_jit_modes(settings: LibtorchParameters) -> None:
    """What the real backend sets before each forward; the absent switches stay as they are."""
    torch._C._set_graph_executor_optimize(settings.optimized_execution)
    if settings.jit_profiling is not None:
        torch._C._jit_set_profiling_mode(settings.jit_profiling)
    if settings.jit_executor is not None:
        torch._C._jit_set_profiling_executor(settings.jit_executor)
    if settings.tensor_fuser is not None:
        torch._C._jit_set_texpr_fuser_enabled(settings.tensor_fuser)
    torch.backends.cudnn.enabled = settings.cudnn


def _set_thread_pools(model: str, settings: LibtorchParameters) -> None:
    if settings.intra_op_threads is not None:
        torch.set_num_threads(settings.intra_op_threads)
    if settings.inter_op_threads is None:
        return
    if not _first_interop_setting_in_server():
        raise pb_utils.TritonModelException(
            f"model '{model}': INTER_OP_THREAD_COUNT was already set by another model of this "
            "server, and libtorch sets the inter-op thread count once per server process: "
            "remove INTER_OP_THREAD_COUNT from the model's config.pbtxt parameters"
        )
    torch.set_num_interop_threads(settings.inter_op_threads)


def _first_interop_setting_in_server() -> bool:
    """Whether no model of this server process set INTER_OP_THREAD_COUNT before.

    Every model runs in its own stub process here, so the server process is named by its PID
    and start time (a marker beside this file), which a restarted server never shares.
    """
    server = os.getppid()
    started = Path(f"/proc/{server}/stat").read_text("utf-8").rsplit(")", 1)[1].split()[19]
    marker = _HERE / f"interop-threads-set.{server}.{started}"
    try:
        os.close(os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        return False
    return True
