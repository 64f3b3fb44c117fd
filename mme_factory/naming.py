"""Deterministic names derived from metadata (DESIGN §3)."""

from __future__ import annotations

import re

CUSTOMER_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


def check_customer_id(customer: str) -> str:
    """Customer ids appear in S3 keys, TargetModels and Triton model names: keep them plain."""
    if not CUSTOMER_ID.match(customer):
        raise ValueError(
            f"invalid customer id {customer!r}: use 1-63 lowercase letters, digits and '-', "
            "starting with a letter or digit"
        )
    return customer
