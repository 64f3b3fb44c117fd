"""The warnings that training and export raise on every run and that say nothing new.

Each is silenced by category, message and the module that raises it, so that any other warning
(a new deprecation, a numerical problem) still reaches the person reading the logs.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass


@dataclass(frozen=True)
class KnownWarning:
    category: type[Warning]
    message: str  # a regular expression matched at the start of the message
    module: str  # a regular expression matched at the start of the raising module's name
    why: str


def known_warnings() -> list[KnownWarning]:
    import torch

    return [
        KnownWarning(
            DeprecationWarning,
            r"`torch\.jit\.\w+` is deprecated",
            r"torch\.jit\.",
            "Triton's libtorch backend serves TorchScript: the export is TorchScript on purpose",
        ),
        KnownWarning(
            torch.jit.TracerWarning,
            "",
            "",  # raised from whichever traced line: torch's, transformers' or this project's
            "every traced export is compared with the eager model by its parity check",
        ),
        KnownWarning(
            FutureWarning,
            r"`is_gradient_checkpointing` is deprecated",
            r"transformers\.",
            "transformers calls its own deprecated property while training",
        ),
    ]


@contextmanager
def known_warnings_silenced() -> Iterator[None]:
    """Silence the known warnings for the block; every other warning is left as it was.

    The filters are process-wide while the block runs (as any warnings filter is): training runs
    one kind at a time in a process, so no other thread's warnings are hidden meanwhile.
    """
    with warnings.catch_warnings():
        for known in known_warnings():
            warnings.filterwarnings(
                "ignore", message=known.message, category=known.category, module=known.module
            )
        yield
