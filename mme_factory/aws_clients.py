"""The one place boto3 clients are built: the endpoint URL picks AWS or the local stack."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlparse

import boto3
from botocore.config import Config

from mme_factory.settings import Settings

_RETRIES = Config(retries={"max_attempts": 5, "mode": "standard"}, connect_timeout=10)
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}


def _client(
    service: str, settings: Settings, endpoint_url: str | None, config: Config = _RETRIES
) -> Any:
    options: dict[str, Any] = {}
    host = urlparse(endpoint_url).hostname if endpoint_url else None
    if host in LOOPBACK_HOSTS and boto3.Session().get_credentials() is None:
        # The embedded default needs no AWS account; botocore still signs every request.
        options = {"aws_access_key_id": "local", "aws_secret_access_key": "local"}
    return boto3.client(
        service, region_name=settings.region, endpoint_url=endpoint_url, config=config, **options
    )


def s3_client(settings: Settings) -> Any:
    return _client("s3", settings, settings.endpoints.s3_endpoint_url)


def sagemaker_client(settings: Settings) -> Any:
    return _client("sagemaker", settings, settings.endpoints.sagemaker_endpoint_url)


def sagemaker_runtime_client(
    settings: Settings,
    read_timeout: float = 70.0,
    max_pool_connections: int = 10,
    retries: int = 5,
) -> Any:
    """`max_pool_connections`: at least the number of threads sharing the client.

    `retries`: botocore's own retries of throttling and 5xx answers; 0 leaves them to the caller
    (the inference client has its own policy).
    """
    pool = max(10, max_pool_connections)
    config = Config(
        read_timeout=read_timeout,
        max_pool_connections=pool,
        retries={"max_attempts": retries, "mode": "standard"},
    )
    return _client(
        "sagemaker-runtime",
        settings,
        settings.endpoints.sagemaker_runtime_endpoint_url,
        _RETRIES.merge(config),
    )


def autoscaling_client(settings: Settings) -> Any:
    return _client("application-autoscaling", settings, settings.autoscaling.endpoint_url)


def ecr_client(settings: Settings) -> Any:
    """ECR of the settings' region, where the serving image is pushed (always AWS itself)."""
    return _client("ecr", settings, None)


def sts_client(settings: Settings) -> Any:
    return _client("sts", settings, None)


def cloudwatch_client(settings: Settings) -> Any:
    """CloudWatch of the settings' region: the endpoints' metrics (AWS only; no local one)."""
    return _client("cloudwatch", settings, None)
