"""Names derived from metadata: endpoints, S3 prefixes, TargetModel keys, registry keys."""

from __future__ import annotations

import re
from dataclasses import dataclass

# Checked with fullmatch: `$` would also match before a final newline. [0-9], not \d, which
# matches every Unicode digit.
CUSTOMER_ID = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")


def check_customer_id(customer: str) -> str:
    """Customer ids appear in S3 keys, TargetModels and Triton model names: keep them plain."""
    if not CUSTOMER_ID.fullmatch(customer):
        raise ValueError(
            f"invalid customer id {customer!r}: use 1-63 lowercase letters, digits and '-', "
            "starting with a letter or digit"
        )
    return customer


def endpoint_name_for(kind: str, env: str) -> str:
    """One multi-model endpoint per model kind and environment, e.g. `dev-mme-embedding`."""
    return f"{env}-mme-{kind}"


def model_data_prefix(endpoint: str) -> str:
    """The endpoint's key prefix in the bucket: its ModelDataUrl is `s3://{bucket}/{prefix}`."""
    return f"mme/{endpoint}/"


REGISTRY_PREFIX = "registry/"


def manifest_key(customer: str) -> str:
    return f"{REGISTRY_PREFIX}{check_customer_id(customer)}.json"


def lock_key(customer: str) -> str:
    return f"{REGISTRY_PREFIX}{check_customer_id(customer)}.lock"


GATE_EVIDENCE_PREFIX = "gate-evidence/"


def gate_evidence_prefix(customer: str) -> str:
    """Where the served versions' gate evidence of a customer is kept, one file per version."""
    return f"{GATE_EVIDENCE_PREFIX}{check_customer_id(customer)}/"


def gate_evidence_key(customer: str, kind: str, version: int) -> str:
    return f"{gate_evidence_prefix(customer)}{kind}/v{version}.json"


def version_record_key(customer: str) -> str:
    # Not `.json`: every `registry/*.json` is a manifest to the readers of the registry.
    return f"{REGISTRY_PREFIX}{check_customer_id(customer)}.version"


@dataclass(frozen=True)
class TargetModelKey:
    """`{customer}/{kind}[-{role}]/v{version}.tar.gz`, relative to the endpoint's prefix."""

    customer: str
    kind: str
    role: str | None
    version: int

    def __post_init__(self) -> None:
        check_customer_id(self.customer)
        if self.version < 1:
            raise ValueError(f"model versions start at 1, got {self.version}")

    @property
    def target(self) -> str:
        return f"{self.kind}-{self.role}" if self.role else self.kind

    def __str__(self) -> str:
        return f"{self.customer}/{self.target}/v{self.version}.tar.gz"

    @classmethod
    def parse(cls, key: str) -> TargetModelKey:
        match = TARGET_MODEL_KEY.fullmatch(key)
        if not match:
            raise ValueError(f"not a TargetModel key: {key!r}")
        kind, _, role = match["target"].partition("-")
        return cls(match["customer"], kind, role or None, int(match["version"]))


TARGET_MODEL_KEY = re.compile(
    r"(?P<customer>[a-z0-9][a-z0-9-]{0,62})/(?P<target>[a-z]+(-[a-z]+)?)/v(?P<version>[0-9]+)\.tar\.gz"
)
