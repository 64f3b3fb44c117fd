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

from mme_local.aws_errors import control_validation
from mme_local.control_request import check_image, check_model_data_url, check_request
from mme_local.control_state import ControlState, ControlStateFile, arn

EndpointStarter = Callable[[str, dict[str, Any]], Awaitable[None]]
EndpointStopper = Callable[[str], Awaitable[None]]
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
        model_arn = arn(self.region, "model", name)
        self.state.models[name] = {
            "ModelName": name,
            "ModelArn": model_arn,
            "PrimaryContainer": container,
            "ExecutionRoleArn": params.get("ExecutionRoleArn"),
            "CreationTime": time.time(),
        }
        self._save()
        return {"ModelArn": model_arn}

    async def _DescribeModel(self, params: dict[str, Any]) -> dict[str, Any]:
        record = self.state.models.get(params["ModelName"])
        if record is None:
            name = arn(self.region, "model", params["ModelName"])
            raise control_validation(f'Could not find model "{name}".')
        return dict(record)

    async def _CreateEndpointConfig(self, params: dict[str, Any]) -> dict[str, Any]:
        name = params["EndpointConfigName"]
        if name in self.state.endpoint_configs:
            raise control_validation(
                f'Cannot create already existing endpoint configuration "{name}".'
            )
        variants = params["ProductionVariants"]
        if len(variants) != 1:
            raise control_validation("mme_local serves exactly one production variant per endpoint")
        for variant in variants:
            if variant.get("ModelName") not in self.state.models:
                raise control_validation(f'Could not find model "{variant.get("ModelName")}".')
        config_arn = arn(self.region, "endpoint-config", name)
        self.state.endpoint_configs[name] = {
            "EndpointConfigName": name,
            "EndpointConfigArn": config_arn,
            "ProductionVariants": variants,
            "CreationTime": time.time(),
        }
        self._save()
        return {"EndpointConfigArn": config_arn}

    async def _CreateEndpoint(self, params: dict[str, Any]) -> dict[str, Any]:
        name, config_name = params["EndpointName"], params["EndpointConfigName"]
        if name in self.state.endpoints:
            raise control_validation(
                f'Cannot create already existing endpoint "{arn(self.region, "endpoint", name)}".'
            )
        spec = self._resolve_spec(config_name)
        now = time.time()
        record = {
            "EndpointName": name,
            "EndpointArn": arn(self.region, "endpoint", name),
            "EndpointConfigName": config_name,
            "EndpointStatus": "Creating",
            "CreationTime": now,
            "LastModifiedTime": now,
        }
        self.state.endpoints[name], self.state.endpoint_specs[name] = record, spec
        self._save()
        try:
            await self._start(name, spec)
        except Exception as error:
            logger.exception("endpoint %s did not start", name)
            self.set_status(name, "Failed", f"endpoint did not start: {error}")
        return {"EndpointArn": record["EndpointArn"]}

    def _resolve_spec(self, config_name: str) -> dict[str, Any]:
        """What an endpoint on `config_name` serves; ValidationException when it cannot serve."""
        config = self.state.endpoint_configs.get(config_name)
        if config is None:
            raise control_validation(f'Could not find endpoint configuration "{config_name}".')
        variant = config["ProductionVariants"][0]
        model = self.state.models.get(variant.get("ModelName"))
        if model is None:
            raise control_validation(f'Could not find model "{variant.get("ModelName")}".')
        url = str(model["PrimaryContainer"].get("ModelDataUrl", ""))
        check_model_data_url(url)
        return {
            "variant": variant["VariantName"],
            "model_data_url": url,
            "production_variant": variant,
        }

    def endpoint_spec(self, name: str) -> dict[str, Any]:
        """The variant and model-data prefix an endpoint serves, as resolved when it was created.

        AwsError, with the reason, when it cannot be known (a state saved before endpoints kept
        theirs, whose config or model has been deleted since).
        """
        spec = self.state.endpoint_specs.get(name)
        if spec is not None:
            return spec
        return self._resolve_spec(str(self.state.endpoints[name].get("EndpointConfigName")))

    def set_status(self, name: str, status: str, reason: str | None = None) -> None:
        record = self.state.endpoints.get(name)
        if record is None:
            return
        record["EndpointStatus"], record["LastModifiedTime"] = status, time.time()
        if reason:
            record["FailureReason"] = reason
        else:
            record.pop("FailureReason", None)
        self._save()

    def _endpoint(self, name: str) -> dict[str, Any]:
        record = self.state.endpoints.get(name)
        if record is None:
            raise control_validation(
                f'Could not find endpoint "{arn(self.region, "endpoint", name)}".'
            )
        return record

    async def _DescribeEndpoint(self, params: dict[str, Any]) -> dict[str, Any]:
        record = dict(self._endpoint(params["EndpointName"]))
        config = self.state.endpoint_configs.get(record["EndpointConfigName"], {})
        # The endpoint runs on what it was created with, even after its config is deleted.
        kept = self.state.endpoint_specs.get(record["EndpointName"], {}).get("production_variant")
        variants = config.get("ProductionVariants") or ([kept] if kept else [])
        count = 1 if record["EndpointStatus"] == "InService" else 0
        record["ProductionVariants"] = [
            {
                "VariantName": variant["VariantName"],
                "CurrentWeight": variant.get("InitialVariantWeight", 1.0),
                "DesiredWeight": variant.get("InitialVariantWeight", 1.0),
                "CurrentInstanceCount": count,
                "DesiredInstanceCount": variant.get("InitialInstanceCount", 1),
            }
            for variant in variants
        ]
        return record

    async def _ListEndpoints(self, params: dict[str, Any]) -> dict[str, Any]:
        contains, status = params.get("NameContains", ""), params.get("StatusEquals")
        keys = ("EndpointName", "EndpointArn", "CreationTime", "LastModifiedTime", "EndpointStatus")
        endpoints = [
            {key: record[key] for key in keys}
            for name, record in sorted(self.state.endpoints.items())
            if contains in name and status in (None, record["EndpointStatus"])
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
