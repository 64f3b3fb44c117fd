"""A control-plane request checked as the real SageMaker API checks it, before anything acts on it.

botocore's service model gives the shape (types, required members, minimum lengths); SageMaker
also enforces each string's pattern and maximum length, whole-value: an EndpointName names a
directory here, so `../x` or a trailing newline never gets that far.
"""

from __future__ import annotations

import functools
import re
from typing import Any

import botocore.session
from botocore.model import ListShape, Shape, StructureShape
from botocore.validate import ParamValidator

from mme_local.aws_errors import control_validation

_SERVICE = botocore.session.get_session().get_service_model("sagemaker")
# SageMaker takes a model's image only as registry/repository[:tag] or registry/repository@digest,
# so a bare name such as "tritonserver:24.09" is refused when the model is created.
CONTAINER_IMAGE = re.compile(
    r"(?:localhost|[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+)(?::\d+)?"
    r"/[a-z0-9]+(?:[._-]+[a-z0-9]+)*(?:/[a-z0-9]+(?:[._-]+[a-z0-9]+)*)*"
    r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}|@sha256:[0-9a-f]{64})?"
)
# A multi-model container's model data is an S3 prefix (or, locally, a directory as file:///...).
MODEL_DATA_URL = re.compile(r"s3://[^/\s]+(?:/\S*)?|file:///\S*")


def check_request(operation: str, params: dict[str, Any]) -> None:
    """Refuse params that botocore's model of the real API, or the API itself, would refuse."""
    try:
        shape = _SERVICE.operation_model(operation).input_shape
    except Exception:
        raise control_validation(f"unknown operation {operation}") from None
    if shape is None:
        return
    report = ParamValidator().validate(params, shape)
    if report.has_errors():
        raise control_validation(report.generate_report())
    errors = _constraint_errors(params, shape, "")
    if errors:
        raise control_validation(
            f"{len(errors)} validation error{'s' if len(errors) > 1 else ''} detected: "
            + "; ".join(errors)
        )


# Checked by check_model_data_url and check_image instead: the emulator also takes file:///
# model data (a local store), which SageMaker's pattern refuses, and an image's message names
# the form expected.
_OWN_CHECKS = frozenset({"ModelDataUrl", "Image"})


def _constraint_errors(value: Any, shape: Shape, path: str) -> list[str]:
    if isinstance(shape, StructureShape) and isinstance(value, dict):
        return [
            error
            for name, member in shape.members.items()
            if name in value and name not in _OWN_CHECKS
            for error in _constraint_errors(value[name], member, f"{path}.{name}".lstrip("."))
        ]
    if isinstance(shape, ListShape) and isinstance(value, list):
        return [
            error
            for index, item in enumerate(value, 1)
            for error in _constraint_errors(item, shape.member, f"{path}.{index}")
        ]
    if shape.type_name != "string" or not isinstance(value, str):
        return []
    errors = []
    maximum, pattern = shape.metadata.get("max"), _pattern(shape.metadata.get("pattern"))
    if maximum is not None and len(value) > maximum:
        errors.append(f"Value at '{path}' failed to satisfy constraint: length at most {maximum}")
    if pattern is not None and not pattern.fullmatch(value):
        errors.append(
            f"Value {value!r} at '{path}' failed to satisfy constraint: Member must satisfy "
            f"regular expression pattern: {pattern.pattern}"
        )
    return errors


@functools.cache
def _pattern(text: str | None) -> re.Pattern[str] | None:
    if text is None:
        return None
    try:
        return re.compile(text)
    except re.error:
        return None  # a pattern in a syntax Python's re lacks: botocore's checks still apply


def check_model_data_url(url: str) -> None:
    if not MODEL_DATA_URL.fullmatch(url):
        raise control_validation(
            f"ModelDataUrl {url!r} is not a model-data prefix: expected s3://<bucket>/<prefix>/ "
            "(or file:///<directory>/ for a local store)"
        )


def check_image(image: str) -> None:
    if not CONTAINER_IMAGE.fullmatch(image):
        raise control_validation(
            f"Image {image!r} is not a container image with a registry path: expected "
            "<registry>/<repository>[:<tag>|@sha256:<digest>]"
        )
