"""The SageMaker control-plane subset over AWS JSON 1.1 (`X-Amz-Target: SageMaker.<Op>`).

Requests are checked as the real API checks them (control_request.py), with the same
`ValidationException`. A request this service could not act on is refused when it is made, never
saved to fail later: an endpoint is created only once what it will serve is known, and it keeps
that even if its config and model go.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from mme_local.aws_errors import AwsError, control_validation
from mme_local.control.control_request import check_image, check_model_data_url, check_request
from mme_local.control.control_state import ControlState, ControlStateFile, arn
from mme_local.control.records import (
    ContainerDefinition,
    EndpointConfigRecord,
    EndpointRecord,
    EndpointSpec,
    EndpointStatus,
    ModelRecord,
    ProductionVariant,
)
from mme_local.control.running_endpoints import StatusReport

EndpointStarter = Callable[[str, EndpointSpec, StatusReport], Awaitable[None]]
EndpointStopper = Callable[[str], Awaitable[None]]
LISTED = ("EndpointName", "EndpointArn", "CreationTime", "LastModifiedTime", "EndpointStatus")
logger = logging.getLogger("mme_local")


class ControlPlane:
    """Handlers for the operations this service supports; state is saved after each change."""

    def __init__(
        self,
        state_file: ControlStateFile,
        region: str,
        start: EndpointStarter,
        stop: EndpointStopper,
    ) -> None:
        self.state_file, self.region = state_file, region
        self.state: ControlState = state_file.load()
        self._start, self._stop = start, stop

    async def handle(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        handler = getattr(self, f"_{operation}", None)
        if handler is None:
            raise control_validation(f"operation {operation} is not supported by mme_local")
        check_request(operation, params)
        return await handler(params)

    async def restore(self) -> None:
        """Bring back every endpoint the state file holds (after a restart of the service).

        Saved state never stops the service from starting: an endpoint that cannot be brought
        back comes back Failed, with the reason.
        """
        for name in list(self.state.endpoints):
            try:
                await self._start(name, self.endpoint_spec(name), self.set_status)
            except Exception as error:
                reason = error.message if isinstance(error, AwsError) else str(error)
                logger.error("endpoint %s cannot be restored: %s", name, reason)
                self.set_status(name, "Failed", f"cannot be restored: {reason}")

    def _save(self) -> None:
        self.state_file.save(self.state)

    async def _CreateModel(self, params: dict[str, Any]) -> dict[str, Any]:
        name = params["ModelName"]
        if name in self.state.models:
            raise control_validation(
                f'Cannot create already existing model "{arn(self.region, "model", name)}".'
            )
        container = params.get("PrimaryContainer") or (params.get("Containers") or [{}])[0]
        if container.get("Mode") != "MultiModel":
            raise control_validation("mme_local serves multi-model endpoints: set Mode=MultiModel")
        check_model_data_url(str(container.get("ModelDataUrl", "")))
        check_image(str(container.get("Image", "")))
        record = ModelRecord(
            model_name=name,
            model_arn=arn(self.region, "model", name),
            primary_container=ContainerDefinition.model_validate(container),
            execution_role_arn=params.get("ExecutionRoleArn"),
            creation_time=time.time(),
        )
        self.state.models[name] = record
        self._save()
        return {"ModelArn": record.model_arn}

    async def _DescribeModel(self, params: dict[str, Any]) -> dict[str, Any]:
        record = self.state.models.get(params["ModelName"])
        if record is None:
            name = arn(self.region, "model", params["ModelName"])
            raise control_validation(f'Could not find model "{name}".')
        return record.to_aws()

    async def _CreateEndpointConfig(self, params: dict[str, Any]) -> dict[str, Any]:
        name = params["EndpointConfigName"]
        if name in self.state.endpoint_configs:
            raise control_validation(
                f'Cannot create already existing endpoint configuration "{name}".'
            )
        variants = [ProductionVariant.model_validate(v) for v in params["ProductionVariants"]]
        if len(variants) != 1:
            raise control_validation("mme_local serves exactly one production variant per endpoint")
        for variant in variants:
            if variant.model_name not in self.state.models:
                raise control_validation(f'Could not find model "{variant.model_name}".')
        record = EndpointConfigRecord(
            endpoint_config_name=name,
            endpoint_config_arn=arn(self.region, "endpoint-config", name),
            production_variants=variants,
            creation_time=time.time(),
        )
        self.state.endpoint_configs[name] = record
        self._save()
        return {"EndpointConfigArn": record.endpoint_config_arn}

    async def _CreateEndpoint(self, params: dict[str, Any]) -> dict[str, Any]:
        name, config_name = params["EndpointName"], params["EndpointConfigName"]
        if name in self.state.endpoints:
            raise control_validation(
                f'Cannot create already existing endpoint "{arn(self.region, "endpoint", name)}".'
            )
        spec = self._resolve_spec(config_name)
        now = time.time()
        record = EndpointRecord(
            endpoint_name=name,
            endpoint_arn=arn(self.region, "endpoint", name),
            endpoint_config_name=config_name,
            endpoint_status="Creating",
            creation_time=now,
            last_modified_time=now,
        )
        self.state.endpoints[name], self.state.endpoint_specs[name] = record, spec
        self._save()
        try:
            await self._start(name, spec, self.set_status)
        except Exception as error:
            logger.exception("endpoint %s did not start", name)
            self.set_status(name, "Failed", f"endpoint did not start: {error}")
        return {"EndpointArn": record.endpoint_arn}

    def _resolve_spec(self, config_name: str) -> EndpointSpec:
        """What an endpoint on `config_name` serves; ValidationException when it cannot serve."""
        config = self.state.endpoint_configs.get(config_name)
        if config is None:
            raise control_validation(f'Could not find endpoint configuration "{config_name}".')
        variant = config.production_variants[0]
        model = self.state.models.get(variant.model_name or "")
        if model is None:
            raise control_validation(f'Could not find model "{variant.model_name}".')
        url = model.primary_container.model_data_url or ""
        check_model_data_url(url)
        return EndpointSpec(
            variant=variant.variant_name, model_data_url=url, production_variant=variant
        )

    def endpoint_spec(self, name: str) -> EndpointSpec:
        """The variant and model-data prefix an endpoint serves, as resolved when it was created.

        AwsError, with the reason, when it cannot be known (a state saved before endpoints kept
        theirs, whose config or model has been deleted since).
        """
        spec = self.state.endpoint_specs.get(name)
        if spec is not None:
            return spec
        return self._resolve_spec(self.state.endpoints[name].endpoint_config_name)

    def set_status(self, name: str, status: EndpointStatus, reason: str | None = None) -> None:
        record = self.state.endpoints.get(name)
        if record is None:
            return
        record.endpoint_status, record.last_modified_time = status, time.time()
        record.failure_reason = reason or None
        self._save()

    def _endpoint(self, name: str) -> EndpointRecord:
        record = self.state.endpoints.get(name)
        if record is None:
            raise control_validation(
                f'Could not find endpoint "{arn(self.region, "endpoint", name)}".'
            )
        return record

    async def _DescribeEndpoint(self, params: dict[str, Any]) -> dict[str, Any]:
        record = self._endpoint(params["EndpointName"])
        config = self.state.endpoint_configs.get(record.endpoint_config_name)
        # The endpoint runs on what it was created with, even after its config is deleted.
        spec = self.state.endpoint_specs.get(record.endpoint_name)
        kept = spec.production_variant if spec is not None else None
        variants = (config.production_variants if config else []) or ([kept] if kept else [])
        count = 1 if record.endpoint_status == "InService" else 0
        answer = record.to_aws()
        answer["ProductionVariants"] = [
            {
                "VariantName": variant.variant_name,
                "CurrentWeight": variant.weight,
                "DesiredWeight": variant.weight,
                "CurrentInstanceCount": count,
                "DesiredInstanceCount": variant.instance_count,
            }
            for variant in variants
        ]
        return answer

    async def _ListEndpoints(self, params: dict[str, Any]) -> dict[str, Any]:
        contains, status = params.get("NameContains", ""), params.get("StatusEquals")
        endpoints = [
            {key: value for key, value in record.to_aws().items() if key in LISTED}
            for name, record in sorted(self.state.endpoints.items())
            if contains in name and status in (None, record.endpoint_status)
        ]
        return {"Endpoints": endpoints}

    async def _DeleteEndpoint(self, params: dict[str, Any]) -> dict[str, Any]:
        name = params["EndpointName"]
        self._endpoint(name)
        # Gone from the state before the first await, so a concurrent delete of the same name is
        # refused as unknown; a create of it meanwhile starts after this stop, in order.
        del self.state.endpoints[name]
        self.state.endpoint_specs.pop(name, None)
        self._save()
        await self._stop(name)
        return {}

    async def _DeleteEndpointConfig(self, params: dict[str, Any]) -> dict[str, Any]:
        name = params["EndpointConfigName"]
        if self.state.endpoint_configs.pop(name, None) is None:
            raise control_validation(f'Could not find endpoint configuration "{name}".')
        self._save()
        return {}

    async def _DeleteModel(self, params: dict[str, Any]) -> dict[str, Any]:
        name = params["ModelName"]
        if self.state.models.pop(name, None) is None:
            raise control_validation(f'Could not find model "{arn(self.region, "model", name)}".')
        self._save()
        return {}
