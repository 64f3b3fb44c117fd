"""Instance types a multi-model endpoint can run on, with memory and price, from a data file.

The default file, `planner/instance_types.yaml`, says where its figures come from and when
they were taken; `mme-factory plan --instance-types FILE` plans with another one.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from mme_factory.errors import MmeFactoryError

MIB_PER_GIB = 1024


class CatalogError(MmeFactoryError):
    """The instance-type file is unreadable or malformed, or names no such instance type."""


class InstanceType(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = ""
    vcpus: int = Field(gt=0)
    memory_gib: float = Field(gt=0)
    gpu: str | None = None
    gpu_memory_gib: float | None = Field(None, gt=0)
    price_per_hour: float = Field(gt=0)

    @model_validator(mode="after")
    def _gpu_has_memory(self) -> InstanceType:
        if (self.gpu is None) != (self.gpu_memory_gib is None):
            raise ValueError("give both gpu and gpu_memory_gib, or neither")
        return self

    @property
    def has_gpu(self) -> bool:
        return self.gpu is not None

    @property
    def memory_mib(self) -> float:
        return self.memory_gib * MIB_PER_GIB

    @property
    def gpu_memory_mib(self) -> float:
        return (self.gpu_memory_gib or 0.0) * MIB_PER_GIB

    def describe(self) -> str:
        gpu = f"{self.gpu} {self.gpu_memory_gib:g} GiB, " if self.has_gpu else "no GPU, "
        return f"{self.name} ({self.vcpus} vCPU, {gpu}{self.memory_gib:g} GiB host memory)"


class InstanceCatalog(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    source: str = Field(min_length=1)
    retrieved: str = Field(pattern=r"^\d{4}-\d{2}-\d{2}$")
    region: str
    currency: str = "USD"
    hours_per_month: float = Field(730, gt=0)
    instance_types: dict[str, InstanceType] = Field(min_length=1)

    @field_validator("instance_types", mode="before")
    @classmethod
    def _name_each_type(cls, value: object) -> object:
        if isinstance(value, dict):
            return {
                name: {**spec, "name": name} if isinstance(spec, dict) else spec
                for name, spec in value.items()
            }
        return value

    def get(self, name: str) -> InstanceType:
        try:
            return self.instance_types[name]
        except KeyError:
            known = ", ".join(sorted(self.instance_types))
            raise CatalogError(
                f"unknown instance type {name!r}; the catalog has: {known}"
            ) from None

    def monthly_price(self, instance: InstanceType, count: int) -> float:
        return instance.price_per_hour * self.hours_per_month * count


def default_catalog_text() -> str:
    return resources.files("planner").joinpath("instance_types.yaml").read_text("utf-8")


def load_catalog(path: Path | None = None) -> InstanceCatalog:
    """The catalog in `path`, or the one shipped with the package."""
    where = str(path) if path else "planner/instance_types.yaml"
    try:
        text = path.read_text(encoding="utf-8") if path else default_catalog_text()
        values = yaml.safe_load(text)
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        raise CatalogError(f"cannot read instance types from {where}: {error}") from None
    try:
        return InstanceCatalog.model_validate(values)
    except ValidationError as error:
        problems = [
            f"{'.'.join(str(part) for part in detail['loc']) or '(top level)'}: {detail['msg']}"
            for detail in error.errors()
        ]
        raise CatalogError(f"invalid instance types in {where}: " + "; ".join(problems)) from None
