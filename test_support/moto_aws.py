"""Settings whose AWS calls go to moto's server, and buckets on it, for the tests that use it.

The server is one per session: a test names its own buckets or prefixes, or removes what it made.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from mme_factory.settings import Settings, load_settings

# Settings fields that point a client at moto's server, per API.
S3 = ("ENDPOINTS__S3_ENDPOINT_URL",)
SAGEMAKER = (
    *S3,
    "ENDPOINTS__SAGEMAKER_ENDPOINT_URL",
    "ENDPOINTS__SAGEMAKER_RUNTIME_ENDPOINT_URL",
)
AUTOSCALING = ("AUTOSCALING__ENDPOINT_URL",)


def fake_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """Credentials that moto accepts, so that botocore never looks for real ones."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")


def moto_settings(
    monkeypatch: pytest.MonkeyPatch,
    moto_url: str,
    state_dir: Path,
    on_moto: Sequence[str] = S3,
    **fields: str,
) -> Settings:
    """Settings with state in `state_dir` and the `on_moto` endpoints on moto's server, under
    fake credentials; `fields` are further settings named as their environment variables are,
    less the prefix (`STORE`, `SAGEMAKER__WAIT_DELAY_S`)."""
    fake_credentials(monkeypatch)
    environ = {"MME_FACTORY_STATE_DIR": str(state_dir)}
    environ |= {f"MME_FACTORY_{name}": moto_url for name in on_moto}
    environ |= {f"MME_FACTORY_{name}": value for name, value in fields.items()}
    return load_settings(environ=environ)


def ensure_bucket(client: Any, bucket: str) -> None:
    """Create `bucket` unless an earlier test on the session's server did."""
    if bucket not in [b["Name"] for b in client.list_buckets()["Buckets"]]:
        client.create_bucket(Bucket=bucket)


def remove_bucket(client: Any, bucket: str) -> None:
    """Delete every object in `bucket`, then the bucket."""
    for item in client.list_objects_v2(Bucket=bucket).get("Contents", []):
        client.delete_object(Bucket=bucket, Key=item["Key"])
    client.delete_bucket(Bucket=bucket)
