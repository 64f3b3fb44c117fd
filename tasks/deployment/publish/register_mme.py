"""Register packaged models on their multi-model endpoints.

The endpoint of each kind is created when missing (a model in MultiModel mode running the
serving image, never the stock Triton image; endpoint config; endpoint) and waited on until
InService, with a bound. Tarballs are uploaded under the endpoint's prefix with immutable keys:
identical bytes again are a no-op, different bytes for an existing key are refused.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError, WaiterError
from prefect import task
from prefect.cache_policies import NO_CACHE

from mme_factory.aws_clients import autoscaling_client, sagemaker_client
from mme_factory.errors import MmeFactoryError
from mme_factory.naming import TargetModelKey, endpoint_name_for, model_data_prefix
from mme_factory.protocol import VALIDATION_EXCEPTION
from mme_factory.serving_image.image_uri import serving_image_uri
from mme_factory.settings import Settings
from mme_factory.store import ArtifactStore, open_store
from tasks.deployment.publish.autoscaling import configure_autoscaling
from tasks.packaging.package_triton import PackagedModel

logger = logging.getLogger("mme_factory.register")


class RegistrationError(MmeFactoryError):
    """An endpoint could not be created or reached, or a TargetModel key is taken."""


@dataclass(frozen=True)
class Registration:
    customer: str
    kind: str
    role: str | None
    version: int
    endpoint: str
    target_model: str
    model_data_url: str
    sha256: str
    size_bytes: int
    code_version: str
    uploaded: bool
    endpoint_created: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def model_data_url(store: ArtifactStore, endpoint: str) -> str:
    """`s3://bucket/mme/{endpoint}/`, or `file:///...` for the embedded default's directory."""
    uri = store.uri(model_data_prefix(endpoint)).rstrip("/") + "/"
    return uri if uri.startswith("s3://") else f"file://{uri}"


def _endpoint_status(client: Any, name: str) -> dict[str, Any] | None:
    try:
        return client.describe_endpoint(EndpointName=name)
    except ClientError as error:
        message = error.response.get("Error", {}).get("Message", "")
        if error.response.get("Error", {}).get("Code") == VALIDATION_EXCEPTION and (
            "Could not find" in message or "does not exist" in message
        ):
            return None
        raise RegistrationError(f"cannot describe endpoint {name}: {error}") from None


def _create_once(create: Any, **request: Any) -> None:
    """A create call that tolerates what an earlier, interrupted attempt already created."""
    try:
        create(**request)
    except ClientError as error:
        message = error.response.get("Error", {}).get("Message", "")
        if "already exist" not in message:
            raise


def ensure_endpoint(client: Any, settings: Settings, kind: str, data_url: str) -> bool:
    """Create the kind's endpoint if missing and wait until InService; True if created."""
    name = endpoint_name_for(kind, settings.env)
    described = _endpoint_status(client, name)
    created = described is None
    if created:
        sm = settings.sagemaker
        logger.info("creating endpoint %s for %s", name, data_url)
        try:
            _create_once(
                client.create_model,
                ModelName=name,
                ExecutionRoleArn=sm.role_arn,
                PrimaryContainer={
                    "Image": serving_image_uri(settings, sm.instance_types[kind]),
                    "ModelDataUrl": data_url,
                    "Mode": "MultiModel",
                    "MultiModelConfig": {"ModelCacheSetting": "Enabled"},
                    "Environment": container_environment(settings),
                },
            )
            _create_once(
                client.create_endpoint_config,
                EndpointConfigName=name,
                ProductionVariants=[
                    {
                        "VariantName": sm.variant_name,
                        "ModelName": name,
                        "InstanceType": sm.instance_types[kind],
                        "InitialInstanceCount": sm.initial_instance_count,
                    }
                ],
            )
            _create_once(client.create_endpoint, EndpointName=name, EndpointConfigName=name)
        except ClientError as error:
            raise RegistrationError(f"cannot create endpoint {name}: {error}") from None
    elif described["EndpointStatus"] == "InService":
        return False
    if described is not None and described["EndpointStatus"] in ("Failed", "OutOfService"):
        reason = described.get("FailureReason", "no reason given")
        raise RegistrationError(
            f"endpoint {name} is {described['EndpointStatus']}: {reason}; "
            "delete it or fix it before registering models"
        )
    wait_in_service(client, settings, name)
    return created


def wait_in_service(client: Any, settings: Settings, name: str) -> None:
    sm = settings.sagemaker
    try:
        client.get_waiter("endpoint_in_service").wait(
            EndpointName=name,
            WaiterConfig={"Delay": sm.wait_delay_s, "MaxAttempts": sm.wait_max_attempts},
        )
    except WaiterError as error:
        status = (_endpoint_status(client, name) or {}).get("EndpointStatus", "missing")
        raise RegistrationError(
            f"endpoint {name} not InService after "
            f"{sm.wait_delay_s * sm.wait_max_attempts} s (status {status}): "
            f"{error}"
        ) from None


def upload_tarball(store: ArtifactStore, key: str, tarball: Path, sha256: str) -> bool:
    """Upload to an immutable key; False when the same bytes are already there."""
    if store.exists(key):
        existing = store.stored_sha256(key)
        if existing == sha256:
            return False
        raise RegistrationError(
            f"{store.uri(key)} already holds other bytes (sha256 "
            f"{existing[:12]}, new {sha256[:12]}): versions are immutable, "
            "register a new version instead"
        )
    store.put_file(key, tarball, sha256)
    return True


def register_mme(package: PackagedModel, version: int, settings: Settings) -> Registration:
    """Create the endpoint if needed and upload one packaged TargetModel under its prefix."""
    store = open_store(settings.store, settings)
    endpoint = endpoint_name_for(package.kind, settings.env)
    data_url = model_data_url(store, endpoint)
    created = ensure_endpoint(sagemaker_client(settings), settings, package.kind, data_url)
    if settings.autoscaling.enabled:
        configure_autoscaling(autoscaling_client(settings), settings, package.kind, endpoint)
    key = TargetModelKey(package.customer, package.kind, package.role, version)
    uploaded = upload_tarball(
        store, model_data_prefix(endpoint) + str(key), Path(package.tarball), package.sha256
    )
    return Registration(
        package.customer,
        package.kind,
        package.role,
        version,
        endpoint,
        str(key),
        data_url,
        package.sha256,
        package.size_bytes,
        package.code_version,
        uploaded,
        created,
    )


@task(name="register-mme", retries=2, retry_delay_seconds=5, cache_policy=NO_CACHE)
def register_mme_task(package: PackagedModel, version: int, settings: Settings) -> Registration:
    """Register one packaged TargetModel on its kind's multi-model endpoint."""
    return register_mme(package, version, settings)


def container_environment(settings: Settings) -> dict[str, str]:
    """The Triton container's environment: multi-model mode, and each Python stub's
    shared-memory region as configured (the image's own default is 16 MiB per stub)."""
    triton = settings.triton
    return {
        "SAGEMAKER_MULTI_MODEL": "true",
        "SAGEMAKER_TRITON_SHM_DEFAULT_BYTE_SIZE": str(triton.python_shm_default_bytes),
        "SAGEMAKER_TRITON_SHM_GROWTH_BYTE_SIZE": str(triton.python_shm_growth_bytes),
    }
