"""TargetModel names: what InvokeEndpoint accepts and the Triton model name derived from it.

A TargetModel is a key relative to the endpoint's model-data prefix, e.g.
`acme/embedding-query/v3.tar.gz`. AWS allows any printable text; this service accepts a safer
subset so a TargetModel can never name a file outside the prefix.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from mme_factory.protocol import TARGET_MODEL_HEADER

MAX_TARGET_MODEL_CHARS = 1024
_ALLOWED = re.compile(r"[A-Za-z0-9._\-/+=@]+")


class InvalidTargetModel(ValueError):
    """The TargetModel header is missing or could leave the endpoint's prefix."""


@dataclass(frozen=True)
class TargetModel:
    key: str

    @classmethod
    def parse(cls, value: str | None) -> TargetModel:
        """Check a TargetModel header value; the error says what is wrong with it."""
        if value is None or value == "":
            raise InvalidTargetModel(
                f"TargetModel is required for a multi-model endpoint (header {TARGET_MODEL_HEADER})"
            )
        if len(value) > MAX_TARGET_MODEL_CHARS:
            raise InvalidTargetModel(
                f"TargetModel is {len(value)} characters; at most {MAX_TARGET_MODEL_CHARS}"
            )
        if _ALLOWED.fullmatch(value) is None:
            bad = sorted({char for char in value if _ALLOWED.fullmatch(char) is None})
            raise InvalidTargetModel(
                f"TargetModel {value!r} holds characters outside [A-Za-z0-9._-/+=@]: "
                + " ".join(repr(char) for char in bad)
            )
        if value.startswith("/"):
            raise InvalidTargetModel(
                f"TargetModel {value!r} is absolute; give a key relative to the endpoint's "
                "model-data prefix"
            )
        parts = value.split("/")
        if any(part in ("", ".", "..") for part in parts):
            raise InvalidTargetModel(
                f"TargetModel {value!r} has an empty, '.' or '..' path segment"
            )
        return cls(value)

    @property
    def triton_name(self) -> str:
        """Triton's model name: a hash, as SageMaker does, since a TargetModel may hold `/`."""
        return hashlib.md5(self.key.encode(), usedforsecurity=False).hexdigest()

    def __str__(self) -> str:
        return self.key
