"""A Python-based Triton backend named `pytorch`: runs a `pytorch_libtorch` model's `model.pt`.

The Triton build in nvidia-pytriton has no libtorch backend, so the local server installs this
file as `<backend dir>/pytorch/model.py`. A model whose config says
`platform: "pytorch_libtorch"` then loads unchanged, as it would on the production container,
and its tensors bind as the real backend binds them (tensor_binding.py): inputs by `forward`
argument name, else by `<name>__<index>`, else in config order; outputs by `<name>__<index>`,
else in config order. Requests with equal input shapes are stacked into one forward call, which
is what Triton's dynamic batcher does for the real libtorch backend. Two of that backend's config
parameters are honoured with the same meaning: `DISABLE_OPTIMIZED_EXECUTION` ("true": no JIT
profiling and re-specialisation, which costs several slow calls per new sequence length) and
`INFERENCE_MODE` (default "true").

torch comes from the server's environment (named in libtorch_site_packages.txt beside this
file), not the models' one: the real backend brings its own libtorch too.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import triton_python_backend_utils as pb_utils

_HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(_HERE))
sys.path.insert(0, (_HERE / "libtorch_site_packages.txt").read_text("utf-8").strip())

import torch  # noqa: E402
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
        self.optimized = parameters.get("DISABLE_OPTIMIZED_EXECUTION", "false").lower() != "true"
        self.inference_mode = parameters.get("INFERENCE_MODE", "true").lower() == "true"
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
            f"pytorch backend: {path} on {self.device}, {torch.get_num_threads()} threads, "
            f"optimized execution {self.optimized}, inference mode {self.inference_mode}"
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
        with (
            torch.inference_mode(self.inference_mode),
            torch.jit.optimized_execution(self.optimized),
        ):
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
                    pb_utils.Tensor(name, np.ascontiguousarray(array[start:end].astype(dtype)))
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
