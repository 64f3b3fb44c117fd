"""`export.json`: what the export step wrote beside an exported model, and the packager reads.

One per TargetModel: `<run>/embedding/<role>/`, `<run>/classifier/`, `<run>/autocomplete/`.
Its fields fill the placeholders of the kind's Triton layout (`triton_models/<kind>/`).
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal, Self

from pydantic import Field, TypeAdapter, ValidationError

from mme_factory.records.json_record import JsonFile, UnreadableRecord, explained


class ExportRecord(JsonFile):
    file_name: ClassVar[str] = "export.json"

    kind: str
    max_length: int
    parity_max_abs_diff: float | None = None  # the export's largest difference from eager
    parity_devices: list[str] | None = None  # where the saved file was checked: cpu, cuda
    dtype: str | None = None  # of the weights (float32, float16); inputs and outputs keep theirs

    @classmethod
    def from_object(cls, document: object) -> Self:
        """Read as the kind the document names; a subclass reads only its own kind."""
        if cls is not ExportRecord:
            return super().from_object(document)
        try:
            return _ANY_EXPORT.validate_python(document)
        except ValidationError as error:
            raise UnreadableRecord(explained(error)) from None


class EmbeddingExport(ExportRecord):
    kind: Literal["embedding"]
    role: str  # query or article: one encoder each
    dim: int


class ClassifierExport(ExportRecord):
    kind: Literal["classifier"]
    num_labels: int


class AutocompleteExport(ExportRecord):
    kind: Literal["autocomplete"]
    eos_token_id: int
    prompt_format: str
    stop: list[str]
    bos_token_id: int | None = None  # what an empty prompt starts from; None: it stays empty
    max_position_embeddings: int = 2048  # prompt and new tokens together
    max_new_tokens: int = 64  # the most one request may ask for


AnyExport = Annotated[
    EmbeddingExport | ClassifierExport | AutocompleteExport, Field(discriminator="kind")
]
_ANY_EXPORT: TypeAdapter[AnyExport] = TypeAdapter(AnyExport)

# What a kind's export step returns and its metadata.json keeps: one export, or one per role.
KindExport = AnyExport | dict[str, AnyExport]
