"""Packaging refuses TorchScript whose graph fixes a device, and names the nodes that do."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import torch

from mme_factory.settings import Settings
from tasks.packaging.device_free_graph import check_device_free, device_pins
from tasks.packaging.package_triton import package_triton
from tasks.packaging.triton_config import PackagingError
from tasks.training.encoders import SentenceEncoder
from tasks.training.serving_modules import scripted_encoder
from test_support.tiny_base_models import tiny_bert
from test_support.tiny_exports import MeanPooledEncoder, write_tiny_run

HERE = Path(__file__).name


class PinnedPositions(torch.nn.Module):
    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(input_ids.shape[1], device="cpu")
        return (input_ids + positions) * attention_mask.to("cpu")


class CopiedToHost(torch.nn.Module):
    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return input_ids.cpu() * attention_mask


class PinnedHelper(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x

    @torch.jit.export
    def padding(self, x: torch.Tensor) -> torch.Tensor:
        if bool(x.sum() > 0):
            x = x.new_zeros(3, device=torch.device("cuda:0"))
        return x


class WithPinnedHelper(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.helper = PinnedHelper()

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.helper(input_ids) * attention_mask


class DeviceFree(torch.nn.Module):
    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(input_ids.shape[1], device=input_ids.device)
        return (input_ids + positions) * attention_mask.to(input_ids.dtype)


def saved(module: torch.jit.ScriptModule) -> bytes:
    buffer = io.BytesIO()
    torch.jit.save(module, buffer)
    return buffer.getvalue()


def reloaded(module: torch.jit.ScriptModule) -> torch.jit.ScriptModule:
    return torch.jit.load(io.BytesIO(saved(module)))


def test_a_constant_device_argument_is_named_with_its_source_line() -> None:
    pins = device_pins(reloaded(torch.jit.script(PinnedPositions())))
    described = [pin.describe() for pin in pins]
    assert any(
        text.startswith("aten::arange(device='cpu') in forward at ") and HERE in text
        for text in described
    )
    assert any(text.startswith("aten::to(device='cpu') in forward") for text in described)
    assert all(pin.source and HERE in pin.source for pin in pins)


def test_every_method_of_every_submodule_is_walked() -> None:
    pins = device_pins(reloaded(torch.jit.script(WithPinnedHelper())))
    assert [(pin.node, pin.device, pin.method) for pin in pins] == [
        ("aten::new_zeros", "cuda:0", "helper.padding")
    ]


def test_a_move_to_a_named_device_is_a_pin() -> None:
    pins = device_pins(reloaded(torch.jit.script(CopiedToHost())))
    assert [(pin.node, pin.device) for pin in pins] == [("aten::cpu", "cpu")]


def test_a_trace_of_transformers_bert_holds_cpu_constants() -> None:
    ids = torch.ones((2, 6), dtype=torch.int64)
    mask = torch.ones((2, 6), dtype=torch.int64)
    mask[1, 4:] = 0
    with torch.inference_mode():
        traced = torch.jit.trace(
            MeanPooledEncoder(tiny_bert(0)).eval(), (ids, mask), check_trace=False
        )
    pins = device_pins(reloaded(traced))
    assert {pin.device for pin in pins} == {"cpu"}
    assert {"aten::to", "aten::arange"} <= {pin.node for pin in pins}
    assert any(pin.source and "transformers" in pin.source for pin in pins)


def test_device_free_graphs_pass() -> None:
    assert device_pins(reloaded(torch.jit.script(DeviceFree()))) == []
    exported = scripted_encoder(SentenceEncoder(tiny_bert(0)), torch.float16)
    check_device_free("m", "m/1/model.pt", saved(exported))


def test_the_error_names_the_model_the_file_the_node_and_the_fix() -> None:
    model_pt = saved(torch.jit.script(PinnedPositions()))
    with pytest.raises(PackagingError) as refused:
        check_device_free("acme--classifier--v1--classifier", "classifier/1/model.pt", model_pt)
    message = str(refused.value)
    assert message.startswith("model acme--classifier--v1--classifier: classifier/1/model.pt ")
    assert "aten::arange(device='cpu') in forward at " in message
    assert "torch.jit.script" in message and "device=input_ids.device" in message


def test_packaging_refuses_a_device_pinned_export(tmp_path: Path, settings: Settings) -> None:
    run = write_tiny_run(tmp_path / "state", "acme", "run-1", seed=1)
    pinned = run / "classifier" / "model.pt"
    torch.jit.save(torch.jit.script(PinnedPositions()), str(pinned))
    with pytest.raises(
        PackagingError,
        match=rf"model acme--classifier--run-1--classifier: .*model\.pt \({pinned}\) fixes a "
        r"device in its graph \(aten::arange\(device='cpu'\) in forward at ",
    ):
        package_triton(run, settings, output_dir=tmp_path / "out")
