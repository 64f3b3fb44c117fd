"""The HTTP headers of an InvokeEndpoint call, and the CustomAttributes mark of a warm-up.

boto3 sends `TargetModel` and `CustomAttributes` as these headers; the endpoint names the variant
that answered in its own.
"""

from __future__ import annotations

TARGET_MODEL_HEADER = "X-Amzn-SageMaker-Target-Model"
CUSTOM_ATTRIBUTES_HEADER = "X-Amzn-SageMaker-Custom-Attributes"
INVOKED_VARIANT_HEADER = "X-Amzn-Invoked-Production-Variant"

# The CustomAttributes of every warm-up call: the endpoint counts it as use of its model (for
# LRU eviction), not as customer traffic.
WARMUP_ATTRIBUTE = "mme-factory-warmup"


def is_warmup(custom_attributes: str | None) -> bool:
    """Whether a call's CustomAttributes mark it as a warm-up (alone or among others)."""
    return WARMUP_ATTRIBUTE in (custom_attributes or "")
