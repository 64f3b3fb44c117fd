"""The base of every record one stage writes and another reads, and how it becomes a JSON file.

A record keeps the fields it does not know (an older or newer writer's) and writes back only
the fields that were present or set, so reading and writing a file changes nothing else in it.
Every file is pretty-printed the same way: two-space indent, sorted keys, a final newline.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar, Self

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from mme_factory.errors import MmeFactoryError


class UnreadableRecord(MmeFactoryError):
    """A record's JSON is malformed or lacks a field its readers need."""


def explained(error: ValidationError) -> str:
    problems = [
        f"{'.'.join(str(part) for part in detail['loc']) or 'the document'}: {detail['msg']}"
        for detail in error.errors()[:3]
    ]
    more = error.error_count() - len(problems)
    return "; ".join(problems) + (f" (and {more} more)" if more > 0 else "")


class JsonRecord(BaseModel):
    model_config = ConfigDict(extra="allow", validate_assignment=True)

    # Sections every writer writes, also when the file read lacked them: changed in place,
    # they must not be left out as "never set".
    always_written: ClassVar[tuple[str, ...]] = ()

    @model_validator(mode="after")
    def _mark_always_written(self) -> Self:
        self.model_fields_set.update(self.always_written)
        return self

    @classmethod
    def from_object(cls, document: object) -> Self:
        """The record in a parsed JSON document; UnreadableRecord names what is wrong."""
        try:
            return cls.model_validate(document)
        except ValidationError as error:
            raise UnreadableRecord(explained(error)) from None

    @classmethod
    def from_json(cls, data: str | bytes) -> Self:
        return cls.from_object(load_json(data))

    def to_dict(self) -> dict[str, Any]:
        """The JSON object this record is written as."""
        return self.model_dump(exclude_unset=True)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True, default=str) + "\n"


def load_json(data: str | bytes) -> object:
    try:
        return json.loads(data)
    except (ValueError, RecursionError) as error:
        raise UnreadableRecord(f"not JSON: {error}") from None


class JsonFile(JsonRecord):
    """A record kept as one file, `file_name`, in a directory of a run."""

    file_name: ClassVar[str]

    @classmethod
    def path_in(cls, directory: Path) -> Path:
        return directory / cls.file_name

    @classmethod
    def read(cls, directory: Path) -> Self:
        """The record in `directory`; OSError when the file is missing, UnreadableRecord when
        it is not the record."""
        path = cls.path_in(directory)
        try:
            return cls.from_json(path.read_bytes())
        except UnreadableRecord as error:
            raise UnreadableRecord(f"{path}: {error}") from None

    def write(self, directory: Path) -> Path:
        target = self.path_in(directory)
        write_whole(target, self.to_json())
        return target


def write_whole(target: Path, text: str) -> None:
    """Write the file whole or not at all: a reader never sees half of it."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.partial")
    partial.write_text(text, encoding="utf-8")
    partial.replace(target)
