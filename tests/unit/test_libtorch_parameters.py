"""Config parameters of the libtorch backend are read as the real backend reads them."""

from __future__ import annotations

import pytest

from mme_factory.triton.backends.pytorch.libtorch_parameters import (
    LibtorchParameters,
    ParameterError,
    parse_parameters,
)
from tasks.packaging.triton_layout import TRITON_MODELS, read_layout


def test_no_parameters_leave_the_backend_defaults() -> None:
    assert parse_parameters({}) == LibtorchParameters()
    assert LibtorchParameters().optimized_execution and LibtorchParameters().inference_mode


@pytest.mark.parametrize(("value", "expected"), [("true", True), ("ON", True), ("1", True)])
def test_booleans_take_the_spellings_libtorch_takes(value: str, expected: bool) -> None:
    settings = parse_parameters({"DISABLE_OPTIMIZED_EXECUTION": value, "INFERENCE_MODE": "Off"})
    assert settings.optimized_execution is not expected
    assert settings.inference_mode is False


@pytest.mark.parametrize("value", ["yes", "", "truee", "2"])
def test_a_boolean_libtorch_cannot_read_is_refused(value: str) -> None:
    with pytest.raises(ParameterError, match=f"INFERENCE_MODE: failed to convert '{value}'"):
        parse_parameters({"INFERENCE_MODE": value})


def test_the_first_bad_parameter_in_the_backends_order_is_named() -> None:
    with pytest.raises(ParameterError, match="DISABLE_OPTIMIZED_EXECUTION"):
        parse_parameters({"INTRA_OP_THREAD_COUNT": "many", "DISABLE_OPTIMIZED_EXECUTION": "no"})


@pytest.mark.parametrize(("value", "expected"), [("4", 4), (" 2", 2), ("3threads", 3)])
def test_thread_counts_are_read_as_stoi_reads_them(value: str, expected: int) -> None:
    settings = parse_parameters({"INTRA_OP_THREAD_COUNT": value, "INTER_OP_THREAD_COUNT": value})
    assert settings.intra_op_threads == expected
    assert settings.inter_op_threads == expected


@pytest.mark.parametrize("value", ["0", "-1"])
def test_a_thread_count_below_one_is_ignored(value: str) -> None:
    assert parse_parameters({"INTRA_OP_THREAD_COUNT": value}).intra_op_threads is None


@pytest.mark.parametrize("value", ["four", "", "99999999999"])
def test_a_thread_count_libtorch_cannot_read_is_refused(value: str) -> None:
    with pytest.raises(ParameterError, match="INTER_OP_THREAD_COUNT"):
        parse_parameters({"INTER_OP_THREAD_COUNT": value})


def test_jit_switches_are_left_alone_unless_set() -> None:
    settings = parse_parameters({"ENABLE_JIT_PROFILING": "false"})
    assert settings.jit_profiling is False
    assert settings.jit_executor is None and settings.tensor_fuser is None


def test_every_packaged_libtorch_model_has_parameters_the_backend_reads() -> None:
    checked = 0
    for directory in sorted(TRITON_MODELS.iterdir()):
        if not (directory / "layout.yaml").is_file():
            continue
        for model in read_layout(directory.name).models.values():
            if model.get("platform") == "pytorch_libtorch":
                parameters = model.get("parameters") or {}
                parse_parameters({key: str(value) for key, value in parameters.items()})
                checked += 1
    assert checked >= 2  # the embedding encoder and the classifier
