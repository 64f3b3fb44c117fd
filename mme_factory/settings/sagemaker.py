"""Settings of the multi-model endpoints the pipeline creates and registers models on."""

from __future__ import annotations

from pydantic import Field

from mme_factory.settings.section import SettingsSection


class SageMakerSettings(SettingsSection):
    role_arn: str = Field(
        "arn:aws:iam::000000000000:role/mme-factory-local", pattern=r"^arn:aws[a-z-]*:iam::\d{12}:"
    )
    triton_version: str = Field("24.09", pattern=r"^\d{2}\.\d{2}$")
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
    invoke_retries: int = Field(4, ge=0)
    lock_wait_s: float = Field(600.0, ge=0)  # a second onboarding run of a customer waits this long
    warmup_concurrency: int = Field(8, ge=1)
    cold_threshold_ms: float = Field(1000.0, gt=0)  # slower first answers count as cold starts
