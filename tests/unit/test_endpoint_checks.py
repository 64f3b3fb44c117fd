"""Packaging refuses what the serving endpoint would: imports, libtorch tensor names, layouts."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import pytest
import torch
import yaml

from mme_factory.settings import Settings
from mme_factory.triton.backends.pytorch.tensor_binding import (
    FORWARD_ARGUMENT,
    NAMED_INDEX,
    STRICT_CONFIG_ORDERING,
    BindingError,
    bind_inputs,
    bind_outputs,
    named_index,
)
from tasks.packaging.libtorch_tensors import check_libtorch_tensors, forward_signature
from tasks.packaging.package_triton import package_triton
from tasks.packaging.python_imports import check_python_imports, imported_modules
from tasks.packaging.sagemaker_layout import check_sagemaker_layout
from tasks.packaging.triton_config import EnsembleStep, PackagingError, TensorSpec, TritonModelSpec
from tasks.packaging.triton_layout import TRITON_MODELS
from test_support.tiny_exports import write_tiny_run

IDS = TensorSpec("input_ids", "TYPE_INT64", (-1,))
MASK = TensorSpec("attention_mask", "TYPE_INT64", (-1,))


class TwoInTwoOut(torch.nn.Module):
    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return input_ids - attention_mask, input_ids + attention_mask


def scripted(module: torch.nn.Module) -> bytes:
    buffer = io.BytesIO()
    torch.jit.save(torch.jit.script(module), buffer)
    return buffer.getvalue()


def libtorch(inputs: list[TensorSpec], outputs: list[str]) -> TritonModelSpec:
    return TritonModelSpec(
        name="m",
        platform="pytorch_libtorch",
        max_batch_size=8,
        inputs=tuple(inputs),
        outputs=tuple(TensorSpec(name, "TYPE_INT64", (-1,)) for name in outputs),
    )


def python_model(name: str) -> TritonModelSpec:
    return TritonModelSpec(name=name, backend="python", max_batch_size=8, inputs=(), outputs=())


def ensemble(name: str, steps: list[str]) -> TritonModelSpec:
    return TritonModelSpec(
        name=name,
        platform="ensemble",
        max_batch_size=8,
        inputs=(),
        outputs=(),
        steps=tuple(EnsembleStep(step, {}, {}) for step in steps),
    )


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_run(tmp_path_factory.mktemp("state"), "acme", "run-1", seed=1)


@pytest.fixture
def layouts(tmp_path: Path) -> Path:
    return Path(shutil.copytree(TRITON_MODELS, tmp_path / "triton_models"))


# --- imports of Python-backend code -------------------------------------------------------


def test_imports_are_found_anywhere_in_a_file() -> None:
    source = b"import json, numpy as np\nfrom os import path\ndef f():\n    import yaml\n"
    found = [(m.module, m.line) for m in imported_modules(source, "m/1/model.py")]
    assert found == [("json", 1), ("numpy", 1), ("os", 2), ("yaml", 4)]


def test_serving_image_packages_stdlib_backend_and_shipped_modules_are_accepted() -> None:
    check_python_imports(
        "m",
        {
            "m/1/model.py": b"import json\nimport numpy\nfrom tokenizers import "
            b"Tokenizer\nimport triton_python_backend_utils as pb_utils\nimport helper\n",
            "m/1/helper.py": b"import math\n",
        },
    )


@pytest.mark.parametrize(
    ("module", "why"),
    [
        ("transformers", "not in the image at all"),
        ("torch", "networks run on the PyTorch backend, not in Python steps"),
        ("yaml", "there only as a dependency of tokenizers, never pinned"),
        ("tomllib", "standard library of Python 3.11, not of the image's 3.10"),
    ],
)
def test_a_python_step_importing_what_the_image_lacks_is_refused(module: str, why: str) -> None:
    source = f"import numpy\n\nimport {module}\n".encode()
    with pytest.raises(PackagingError, match=rf"m imports .*{module} \(m/1/model.py, line 3\)"):
        check_python_imports("m", {"m/1/model.py": source})


def test_packaging_refuses_a_tokenizer_step_that_imports_transformers(
    tiny_run: Path, layouts: Path, tmp_path: Path, settings: Settings
) -> None:
    step = layouts / "shared" / "code" / "v1" / "tokenizer_step.py"
    step.write_text(
        step.read_text().replace("import numpy as np", "import numpy as np\nimport transformers")
    )
    with pytest.raises(
        PackagingError, match=r"--tokenizer imports .*transformers .*pin the package"
    ):
        package_triton(tiny_run, settings, output_dir=tmp_path / "out", layouts_root=layouts)
    assert not list((tmp_path / "out").rglob("model.tar.gz"))


def test_packaging_refuses_an_autocomplete_step_that_imports_torch_naming_the_file(
    tiny_run: Path, layouts: Path, tmp_path: Path, settings: Settings
) -> None:
    step = layouts / "autocomplete" / "code" / "v2" / "text_steps.py"
    step.write_text(
        step.read_text().replace("import numpy as np", "import numpy as np\nimport torch")
    )
    expected = (
        r"--text imports .*torch \(.*--text/1/model.py, line \d+\).*"
        r"PyTorch backend"
    )
    with pytest.raises(PackagingError, match=expected):
        package_triton(
            tiny_run,
            settings,
            kinds=["autocomplete"],
            output_dir=tmp_path / "out",
            layouts_root=layouts,
        )
    assert not list((tmp_path / "out").rglob("model.tar.gz"))


# --- libtorch tensor names ---------------------------------------------------------------


def test_named_index_reads_the_index_as_libtorch_does() -> None:
    assert named_index("embedding__0") == 0
    assert named_index("a__b__12") is None  # after the first "__": "b__12" is not digits
    assert named_index("logits__3") == 3
    assert named_index("embedding") is None


def test_inputs_bind_by_forward_argument_then_named_index_then_config_order() -> None:
    by_name = bind_inputs("m", ["attention_mask", "input_ids"], ["input_ids", "attention_mask"])
    assert (by_name.convention, by_name.positions) == (
        FORWARD_ARGUMENT,
        {"attention_mask": 1, "input_ids": 0},
    )
    by_index = bind_inputs("m", ["b__1", "a__0"], ["x", "y"])
    assert (by_index.convention, by_index.positions) == (NAMED_INDEX, {"b__1": 1, "a__0": 0})
    assert bind_inputs("m", ["ids", "mask"], ["x", "y"]).convention == STRICT_CONFIG_ORDERING
    assert bind_outputs(["embedding"]).convention == STRICT_CONFIG_ORDERING
    with pytest.raises(BindingError, match="configuration expects 1 inputs, model provides 2"):
        bind_inputs("m", ["input_ids"], ["input_ids", "attention_mask"])


def test_forward_signature_of_a_torchscript_file() -> None:
    assert forward_signature(scripted(TwoInTwoOut())) == (["input_ids", "attention_mask"], 2)


def test_libtorch_names_after_forward_arguments_and_indexed_outputs_are_accepted() -> None:
    check_libtorch_tensors(
        libtorch([MASK, IDS], ["sum__1", "difference__0"]), scripted(TwoInTwoOut())
    )


@pytest.mark.parametrize(
    ("inputs", "outputs", "message"),
    [
        ([IDS], ["difference__0"], "configuration expects 1 inputs, model provides 2"),
        (
            [TensorSpec("ids", "TYPE_INT64", (-1,)), MASK],
            ["difference__0"],
            r"neither forward's arguments \(input_ids, attention_mask\)",
        ),
        ([IDS, MASK], ["difference"], r"must be named <name>__<index>"),
        ([IDS, MASK], ["difference__2"], r"distinct elements of the 2 tensor\(s\)"),
        ([IDS, MASK], ["a__0", "b__0"], r"distinct elements"),
    ],
)
def test_libtorch_tensor_names_the_backend_rejects_or_misbinds_are_refused(
    inputs: list[TensorSpec], outputs: list[str], message: str
) -> None:
    with pytest.raises(PackagingError, match=message):
        check_libtorch_tensors(libtorch(inputs, outputs), scripted(TwoInTwoOut()))


def test_packaging_refuses_an_encoder_whose_output_has_no_index(
    tiny_run: Path, layouts: Path, tmp_path: Path, settings: Settings
) -> None:
    layout_file = layouts / "embedding" / "layout.yaml"
    layout = yaml.safe_load(layout_file.read_text())
    layout["models"]["encoder"]["outputs"][0]["name"] = "embedding"
    layout["models"]["ensemble"]["steps"][1]["outputs"] = {"embedding": "embedding"}
    layout_file.write_text(yaml.safe_dump(layout))
    with pytest.raises(PackagingError, match=r"--encoder: outputs \['embedding'\] must be named"):
        package_triton(tiny_run, settings, output_dir=tmp_path, layouts_root=layouts)


# --- the layout SageMaker loads ----------------------------------------------------------


def test_the_only_model_or_the_only_ensemble_is_the_entry() -> None:
    single = python_model("a")
    assert check_sagemaker_layout([single], {}) is single
    entry = ensemble("e", ["a", "b"])
    assert check_sagemaker_layout([python_model("a"), python_model("b"), entry], {}) is entry


@pytest.mark.parametrize(
    ("specs", "message"),
    [
        ([python_model("a"), python_model("b")], r"exactly one ensemble .*\(found: none\)"),
        ([ensemble("e", ["a"]), ensemble("f", ["a"]), python_model("a")], r"found: e, f"),
        ([ensemble("e", ["a", "b"]), python_model("a")], r"calls \['b'\], which the tarball"),
        ([ensemble("e", ["a"]), python_model("a"), python_model("z")], r"models \['z'\] are not"),
    ],
)
def test_layouts_sagemaker_would_not_load_are_refused(
    specs: list[TritonModelSpec], message: str
) -> None:
    with pytest.raises(PackagingError, match=message):
        check_sagemaker_layout(specs, {})


@pytest.mark.parametrize(
    "source",
    [
        b"import triton_python_backend_utils as pb\nr = pb.InferenceRequest(model_name='x')\n",
        b"from triton_python_backend_utils import InferenceRequest\n",
    ],
)
def test_a_python_model_calling_another_through_bls_is_refused(source: bytes) -> None:
    specs = [ensemble("e", ["a"]), python_model("a")]
    with pytest.raises(PackagingError, match=r"model a \(a/1/model.py, line \d\) calls other"):
        check_sagemaker_layout(specs, {"a": {"a/1/model.py": source}})
