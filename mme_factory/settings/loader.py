"""One typed settings object, read from a YAML file and overridden by environment variables.

Defaults give the embedded local stack. Production is another YAML file (see
`config/aws.example.yaml`), never other code. Overrides use `MME_FACTORY_<FIELD>` and
`MME_FACTORY_<SECTION>__<FIELD>`, e.g. `MME_FACTORY_VALIDATION__MAX_TEXT_CHARS=4000`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ByteSize, Field, ValidationError, model_validator

from mme_factory.errors import SettingsError
from mme_factory.settings.autoscaling import AutoscalingSettings
from mme_factory.settings.fleet import FleetSettings
from mme_factory.settings.prefect import PrefectSettings
from mme_factory.settings.sagemaker import REGION, SageMakerSettings
from mme_factory.settings.section import SettingsSection
from mme_factory.settings.training import TrainingSettings

ENV_PREFIX = "MME_FACTORY_"
SETTINGS_FILE_VARIABLE = "MME_FACTORY_SETTINGS"


class ValidationSettings(SettingsSection):
    """Thresholds of the customer-data rules."""

    min_intents: int = Field(2, ge=2)
    min_examples_per_intent: int = Field(20, ge=1)
    max_text_chars: int = Field(2_000, ge=1)
    max_article_chars: int = Field(20_000, ge=1)
    max_context_chars: int = Field(8_000, ge=1)
    max_duplicate_fraction: float = Field(0.05, ge=0.0, le=1.0)
    min_query_pairs: int = Field(20, ge=1)
    min_reply_pairs: int = Field(100, ge=1)
    max_file_bytes: ByteSize = Field(ByteSize(256 * 1024**2), gt=0)
    sample_rows: int = Field(5, ge=1, le=100)


class EndpointSettings(SettingsSection):
    """Where the AWS APIs are. None means AWS itself; the defaults are the local stack."""

    s3_endpoint_url: str | None = None
    sagemaker_endpoint_url: str | None = "http://127.0.0.1:8780"
    sagemaker_runtime_endpoint_url: str | None = "http://127.0.0.1:8780"


class MemorySettings(SettingsSection):
    """Model-cache memory per endpoint instance; the budget is what LRU eviction keeps under."""

    instance_memory: ByteSize = ByteSize(16 * 1024**3)
    budget_fraction: float = Field(0.8, gt=0.0, le=1.0)
    budget: ByteSize | None = None

    @property
    def budget_bytes(self) -> int:
        if self.budget is not None:
            return int(self.budget)
        return int(self.instance_memory * self.budget_fraction)

    @model_validator(mode="after")
    def _budget_fits_instance(self) -> MemorySettings:
        if self.budget is not None and self.budget > self.instance_memory:
            raise ValueError(
                f"budget ({self.budget.human_readable()}) exceeds instance_memory "
                f"({self.instance_memory.human_readable()})"
            )
        return self


class TritonSettings(SettingsSection):
    """The Triton runtime and how packaged models are configured (instances, batching)."""

    env_dir: Path = Path(".triton-env")  # tritonserver, and torch for the emulated libtorch
    # What Python-backend models run in: the serving image's package list and nothing more.
    python_env_dir: Path = Path(".triton-python-env")
    instance_kind: Literal["KIND_CPU", "KIND_GPU"] = "KIND_CPU"
    instance_count: int = Field(1, ge=1, le=16)
    max_batch_size: int = Field(8, ge=1, le=1024)
    # 0: no waiting for a fuller batch (on a small CPU a wait only adds latency); requests that
    # queue while a model is busy are still batched together.
    max_queue_delay_microseconds: int = Field(0, ge=0, le=10_000_000)
    server_start_timeout_s: float = Field(60.0, gt=0)
    load_timeout_s: float = Field(120.0, gt=0)
    # Each Python-backend stub's shared-memory region (/dev/shm, which SageMaker does not let
    # you enlarge) for its requests' and responses' tensors, and what it grows by when one does
    # not fit. The endpoints get them as SAGEMAKER_TRITON_SHM_DEFAULT_BYTE_SIZE and
    # SAGEMAKER_TRITON_SHM_GROWTH_BYTE_SIZE (the image's own defaults: 16 MiB and 1 MiB); the
    # local Triton as the Python backend's `shm-default-byte-size` and `shm-growth-byte-size`.
    python_shm_default_bytes: int = Field(2 * 1024**2, ge=1024**2)
    python_shm_growth_bytes: int = Field(1024**2, ge=64 * 1024)


class MmeLocalSettings(SettingsSection):
    """The embedded SageMaker multi-model endpoint service (`mme_local`)."""

    host: str = "127.0.0.1"
    port: int = Field(8780, ge=1, le=65535)
    model_load_wait_s: float = Field(60.0, gt=0)
    # Cold loads of different TargetModels that run at once per endpoint (SageMaker's Triton
    # loads up to 4: `--model-load-thread-count`); each reserves its memory before it starts.
    load_concurrency: int = Field(4, ge=1, le=64)
    invoke_timeout_s: float = Field(60.0, gt=0)
    max_extracted_size: ByteSize = Field(ByteSize(8 * 1024**3), gt=0)
    max_tarball_members: int = Field(10_000, ge=1)
    start_timeout_s: float = Field(30.0, gt=0)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


DEFAULT_STATE_DIR = ".mme-factory"


class Settings(SettingsSection):
    env: str = Field("dev", pattern=r"^[a-z][a-z0-9-]{0,19}$")
    region: str = Field("us-east-1", pattern=rf"^{REGION}$")
    store: str = Field(".mme-factory/store", min_length=1)  # default: <state_dir>/store
    state_dir: Path = Path(DEFAULT_STATE_DIR)
    endpoints: EndpointSettings = EndpointSettings()
    memory: MemorySettings = MemorySettings()
    validation: ValidationSettings = ValidationSettings()
    triton: TritonSettings = TritonSettings()
    training: TrainingSettings = TrainingSettings()
    sagemaker: SageMakerSettings = SageMakerSettings()
    autoscaling: AutoscalingSettings = AutoscalingSettings()
    prefect: PrefectSettings = PrefectSettings()
    mme_local: MmeLocalSettings = MmeLocalSettings()
    fleet: FleetSettings = FleetSettings()

    @model_validator(mode="before")
    @classmethod
    def _store_inside_state_dir(cls, values: Any) -> Any:
        """Without a `store`, the artifact store is `<state_dir>/store`: moving the state
        directory moves everything the pipeline keeps locally."""
        if isinstance(values, dict) and values.get("store") is None:
            values = {
                **values,
                "store": str(Path(values.get("state_dir", DEFAULT_STATE_DIR)) / "store"),
            }
        return values

    @property
    def is_local_store(self) -> bool:
        return not self.store.startswith("s3://")

    @property
    def reports_dir(self) -> Path:
        return self.state_dir / "reports"

    @property
    def runs_dir(self) -> Path:
        return self.state_dir / "runs"


def load_settings(
    path: str | Path | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    """Read settings from `path` (or $MME_FACTORY_SETTINGS), then apply environment overrides."""
    environ = os.environ if environ is None else environ
    path = path or environ.get(SETTINGS_FILE_VARIABLE)
    values = _read_yaml(Path(path)) if path else {}
    overrides: dict[str, str] = {}
    for name, raw in environ.items():
        if name.startswith(ENV_PREFIX) and name != SETTINGS_FILE_VARIABLE:
            overrides[".".join(_apply_override(values, name, raw))] = f"{name}={raw!r}"
    try:
        return Settings.model_validate(values)
    except ValidationError as error:
        problems = []
        for detail in error.errors():
            where = ".".join(str(part) for part in detail["loc"]) or "(top level)"
            origin = overrides.get(where) or (f"in {path}" if path else "default")
            problems.append(f"{where}: {detail['msg']} ({origin})")
        raise SettingsError("invalid settings: " + "; ".join(problems)) from None


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SettingsError(f"settings file {path} does not exist") from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        raise SettingsError(f"cannot read settings file {path}: {error}") from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        kind = type(loaded).__name__
        raise SettingsError(f"settings file {path} must hold a mapping, not a {kind}")
    return loaded


def _apply_override(values: dict[str, Any], name: str, raw: str) -> list[str]:
    keys = name[len(ENV_PREFIX) :].lower().split("__")
    model: type[BaseModel] = Settings
    target = values
    for depth, key in enumerate(keys):
        field = model.model_fields.get(key)
        if field is None:
            raise SettingsError(f"{name}: unknown setting '{'.'.join(keys[: depth + 1])}'")
        if depth == len(keys) - 1:
            target[key] = None if raw.lower() in ("", "null", "none") else raw
            return keys
        section = field.annotation
        if not (isinstance(section, type) and issubclass(section, BaseModel)):
            raise SettingsError(f"{name}: '{key}' is not a section")
        nested = target.setdefault(key, {})
        if not isinstance(nested, dict):
            raise SettingsError(f"{name}: '{key}' in the settings file is not a mapping")
        model, target = section, nested
    return keys
