"""The control plane's resources as SageMaker describes them: models, endpoint configs, endpoints.

Fields carry SageMaker's names (PascalCase) in answers and in the state file. A container or a
production variant keeps every member its request gave, typed or not, so a Describe answers it
back whole. A saved record needs only what the service acts on: an older or hand-written state
without an ARN or a creation time still loads.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_pascal

EndpointStatus = Literal["Creating", "InService", "Failed"]


class AwsShape(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_pascal, validate_by_name=True, validate_assignment=True, extra="allow"
    )

    def to_aws(self) -> dict[str, Any]:
        """The shape as SageMaker's API writes it."""
        return self.model_dump(by_alias=True, exclude_none=True)


class ContainerDefinition(AwsShape):
    image: str | None = None
    mode: str | None = None
    model_data_url: str | None = None


class ProductionVariant(AwsShape):
    variant_name: str
    model_name: str | None = None
    initial_instance_count: int | None = None
    initial_variant_weight: float | None = None

    @property
    def weight(self) -> float:
        """The variant's weight: the initial one, 1 when none was given."""
        return 1.0 if self.initial_variant_weight is None else self.initial_variant_weight

    @property
    def instance_count(self) -> int:
        """The instances it asks for: the initial count, 1 when none was given."""
        return 1 if self.initial_instance_count is None else self.initial_instance_count


class ModelRecord(AwsShape):
    model_name: str
    primary_container: ContainerDefinition
    model_arn: str | None = None
    execution_role_arn: str | None = None
    creation_time: float | None = None


class EndpointConfigRecord(AwsShape):
    endpoint_config_name: str
    production_variants: list[ProductionVariant]
    endpoint_config_arn: str | None = None
    creation_time: float | None = None


class EndpointRecord(AwsShape):
    endpoint_name: str
    endpoint_arn: str
    endpoint_config_name: str
    endpoint_status: EndpointStatus
    creation_time: float
    last_modified_time: float
    failure_reason: str | None = None


class EndpointSpec(BaseModel):
    """What an endpoint serves, resolved when it was created: it keeps serving that even after
    its config and model are deleted, as on SageMaker."""

    variant: str
    model_data_url: str
    production_variant: ProductionVariant | None = None  # None in states saved before it was kept
