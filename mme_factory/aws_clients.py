"""The one place boto3 clients are built: the endpoint URL picks AWS or the local stack."""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config

from mme_factory.settings import Settings

_RETRIES = Config(retries={"max_attempts": 5, "mode": "standard"}, connect_timeout=10)


def s3_client(settings: Settings) -> Any:
    return boto3.client(
        "s3",
        region_name=settings.region,
        endpoint_url=settings.endpoints.s3_endpoint_url,
        config=_RETRIES,
    )


def sagemaker_client(settings: Settings) -> Any:
    return boto3.client(
        "sagemaker",
        region_name=settings.region,
        endpoint_url=settings.endpoints.sagemaker_endpoint_url,
        config=_RETRIES,
    )


def sagemaker_runtime_client(settings: Settings, read_timeout: float = 70.0) -> Any:
    return boto3.client(
        "sagemaker-runtime",
        region_name=settings.region,
        endpoint_url=settings.endpoints.sagemaker_runtime_endpoint_url,
        config=_RETRIES.merge(Config(read_timeout=read_timeout)),
    )


def autoscaling_client(settings: Settings) -> Any:
    return boto3.client(
        "application-autoscaling",
        region_name=settings.region,
        endpoint_url=settings.autoscaling.endpoint_url,
        config=_RETRIES,
    )
