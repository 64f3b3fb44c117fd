"""The libtorch backend's config `parameters`, read as its r24.09 `ParseParameters` reads them.

Booleans take `true`/`on`/`1` or `false`/`off`/`0` in any case, anything else fails the load;
counts are read as `std::stoi` reads them (leading digits, anything else fails the load).
Parameters are read in the backend's order, so the first bad one is the one named.

Imports only the standard library: the emulated backend runs it inside Triton and benchmarks
read a packaged config with it, so both apply the same parameters.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

INT32_MAX = 2**31 - 1
_LEADING_INTEGER = re.compile(r"\s*([+-]?\d+)")
_TRUE = ("true", "on", "1")
_FALSE = ("false", "off", "0")


class ParameterError(Exception):
    """The real backend would refuse to load the model with these parameters."""


@dataclass(frozen=True)
class LibtorchParameters:
    optimized_execution: bool = True
    inference_mode: bool = True
    cudnn: bool = True
    cache_cleaning: bool = False
    weight_sharing: bool = False
    # None: the parameter is absent and the backend leaves torch's own setting alone.
    tensor_fuser: bool | None = None
    jit_profiling: bool | None = None
    jit_executor: bool | None = None
    intra_op_threads: int | None = None
    inter_op_threads: int | None = None

    def describe(self) -> str:
        return ", ".join(f"{name} {value}" for name, value in vars(self).items())


def parse_parameters(parameters: dict[str, str]) -> LibtorchParameters:
    """The backend's settings from `{key: string_value}`; ParameterError names a bad one."""

    def flag(key: str) -> bool | None:
        return None if key not in parameters else parse_bool(key, parameters[key])

    def count(key: str) -> int | None:
        if key not in parameters:
            return None
        value = parse_int(key, parameters[key])
        return value if value > 0 else None  # the backend ignores counts below 1

    disable_optimized = flag("DISABLE_OPTIMIZED_EXECUTION")
    cache_cleaning = flag("ENABLE_CACHE_CLEANING")
    inference_mode = flag("INFERENCE_MODE")
    disable_cudnn = flag("DISABLE_CUDNN")
    tensor_fuser = flag("ENABLE_TENSOR_FUSER")
    weight_sharing = flag("ENABLE_WEIGHT_SHARING")
    jit_profiling = flag("ENABLE_JIT_PROFILING")
    jit_executor = flag("ENABLE_JIT_EXECUTOR")
    return LibtorchParameters(
        optimized_execution=not disable_optimized,
        inference_mode=inference_mode is not False,
        cudnn=not disable_cudnn,
        cache_cleaning=bool(cache_cleaning),
        weight_sharing=bool(weight_sharing),
        tensor_fuser=tensor_fuser,
        jit_profiling=jit_profiling,
        jit_executor=jit_executor,
        intra_op_threads=count("INTRA_OP_THREAD_COUNT"),
        inter_op_threads=count("INTER_OP_THREAD_COUNT"),
    )


def parse_bool(key: str, value: str) -> bool:
    if value.lower() in _TRUE:
        return True
    if value.lower() in _FALSE:
        return False
    raise ParameterError(f"parameter {key}: failed to convert '{value}' to boolean")


def parse_int(key: str, value: str) -> int:
    match = _LEADING_INTEGER.match(value)
    if match is None:
        raise ParameterError(f"parameter {key}: failed to convert '{value}' to integral number")
    number = int(match.group(1))
    if not -INT32_MAX - 1 <= number <= INT32_MAX:
        # std::stoi throws out_of_range, which the backend does not catch.
        raise ParameterError(f"parameter {key}: '{value}' is out of range for an int")
    return number
