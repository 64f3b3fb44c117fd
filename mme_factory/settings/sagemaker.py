"""Settings of the multi-model endpoints the pipeline creates and registers models on."""

from __future__ import annotations

import re

from pydantic import Field, field_validator

from mme_factory.settings.section import SettingsSection

ACCOUNT = r"[0-9]{12}"
REGION = r"[a-z]{2}(?:-[a-z]+)+-[0-9]"
ECR_REPOSITORY = r"[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*"
# <account>.dkr.ecr.<region>.amazonaws.com[.cn]/<repository>(:<tag> | @sha256:<digest>)
ECR_IMAGE_URI = re.compile(
    rf"(?P<registry>(?P<account>{ACCOUNT})\.dkr\.ecr\.(?P<region>{REGION})"
    r"\.(?P<domain>amazonaws\.com(?:\.cn)?))"
    rf"/(?P<repository>{ECR_REPOSITORY})"
    r"(?::(?P<tag>[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})|@(?P<digest>sha256:[0-9a-f]{64}))"
)


class SageMakerSettings(SettingsSection):
    role_arn: str = Field(
        "arn:aws:iam::000000000000:role/mme-factory-local",
        pattern=rf"^arn:aws[a-z-]*:iam::{ACCOUNT}:",
    )
    triton_version: str = Field("24.09", pattern=r"^[0-9]{2}\.[0-9]{2}$")
    # The image every endpoint's model runs. null: the serving image built by `mme-factory
    # serving-image --push`, in the role's account and the settings' region, tagged
    # <triton_version>-py3[-cpu]-<digest of its package lists>.
    image_uri: str | None = None
    image_repository: str = Field(
        "mme-factory-triton", min_length=2, max_length=256, pattern=rf"^{ECR_REPOSITORY}$"
    )
    instance_types: dict[str, str] = Field(
        default_factory=lambda: {
            "embedding": "ml.g4dn.xlarge",
            "classifier": "ml.g4dn.xlarge",
            "autocomplete": "ml.g4dn.2xlarge",
        }
    )
    initial_instance_count: int = Field(1, ge=1)
    variant_name: str = "AllTraffic"
    # Waiting for InService: AWS takes minutes (poll every 30 s); the local service seconds.
    wait_delay_s: int = Field(2, ge=1)
    wait_max_attempts: int = Field(90, ge=1)
    # InvokeEndpoint errors SageMaker says to retry (still loading, throttled, unavailable) are
    # retried after jittered exponential waits (base, doubling, capped) until the deadline
    # after the first attempt or `invoke_retries` retries, whichever comes first.
    invoke_retries: int = Field(8, ge=0)
    invoke_deadline_s: float = Field(120.0, gt=0)
    invoke_backoff_base_s: float = Field(0.5, gt=0)
    invoke_backoff_cap_s: float = Field(8.0, gt=0)
    # How old the client's copy of a customer manifest may get before it checks for a change.
    manifest_refresh_s: float = Field(2.0, ge=0)
    lock_wait_s: float = Field(600.0, ge=0)  # a second onboarding run of a customer waits this long
    # A run renews its customer lock every quarter of this; a lock not renewed for this long
    # belongs to a run that died and is taken over.
    lock_stale_s: float = Field(300.0, ge=1)
    warmup_concurrency: int = Field(8, ge=1)
    cold_threshold_ms: float = Field(1000.0, gt=0)  # slower first answers count as cold starts

    @field_validator("image_uri")
    @classmethod
    def _ecr_image(cls, value: str | None) -> str | None:
        if value is not None and not ECR_IMAGE_URI.fullmatch(value):
            raise ValueError(
                f"{value!r} is not an ECR image URI: expected <12-digit account>.dkr.ecr."
                "<region>.amazonaws.com/<repository>:<tag> or ...@sha256:<digest>"
            )
        return value

    @property
    def account_id(self) -> str:
        """The 12-digit account of `role_arn`: where the serving image's repository lives."""
        return self.role_arn.split(":")[4]
