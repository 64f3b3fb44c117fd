"""How Triton's libtorch backend binds config tensors to a TorchScript `forward` (r24.09 rules).

Inputs: when every config input is an argument name of `forward`, each binds to that argument;
else when every name is `<name>__<index>`, to position `index`; else by config order. The number
of config inputs must equal the number of `forward` arguments. Outputs: `<name>__<index>` takes
element `index` of what `forward` returns; otherwise outputs bind by config order.

Imports only the standard library: the emulated backend runs it inside Triton and the packager
runs it before a model is shipped, so both apply the same rules.
"""

from __future__ import annotations

from dataclasses import dataclass

DELIMITER = "__"
FORWARD_ARGUMENT = "forward argument"
NAMED_INDEX = "named index"
STRICT_CONFIG_ORDERING = "config order"


class BindingError(Exception):
    """The real backend would refuse to load the model with these tensors."""


@dataclass(frozen=True)
class Binding:
    convention: str
    positions: dict[str, int]  # config tensor name -> forward argument / returned element


def named_index(name: str) -> int | None:
    """The index of `<name>__<index>`, read as libtorch does (after the first `__`)."""
    start = name.find(DELIMITER)
    if start == -1:
        return None
    digits = name[start + len(DELIMITER) :]
    if not all(character.isdigit() for character in digits):
        return None
    return int(digits or "0")


def bind_inputs(model: str, config_inputs: list[str], forward_arguments: list[str]) -> Binding:
    if len(config_inputs) != len(forward_arguments):
        raise BindingError(
            f"unable to load model '{model}', configuration expects {len(config_inputs)} "
            f"inputs, model provides {len(forward_arguments)}"
        )
    if all(name in forward_arguments for name in config_inputs):
        positions = {name: forward_arguments.index(name) for name in config_inputs}
        return Binding(FORWARD_ARGUMENT, positions)
    binding = _indexed_or_ordered(config_inputs)
    # The real backend indexes its argument list with these; a gap or a repeat is undefined.
    if sorted(binding.positions.values()) != list(range(len(forward_arguments))):
        raise BindingError(
            f"model '{model}': inputs {config_inputs} must take each of forward's "
            f"{len(forward_arguments)} arguments once"
        )
    return binding


def bind_outputs(config_outputs: list[str]) -> Binding:
    return _indexed_or_ordered(config_outputs)


def _indexed_or_ordered(names: list[str]) -> Binding:
    indices = [named_index(name) for name in names]
    if all(index is not None for index in indices):
        return Binding(NAMED_INDEX, {n: int(i) for n, i in zip(names, indices, strict=True)})
    return Binding(STRICT_CONFIG_ORDERING, {name: index for index, name in enumerate(names)})
