"""Which image an endpoint's model runs: the serving image's ECR URI, derived from settings.

    stock    763104351884.dkr.ecr.<region>.amazonaws.com/sagemaker-tritonserver:24.09-py3[-cpu]
    serving  <role_arn's account>.dkr.ecr.<region>.amazonaws.com/<image_repository>:
             24.09-py3[-cpu]-<first 12 hex of image_digest()>

The stock image comes from the sagemaker SDK, which picks `-py3` for GPU instance types and
`-py3-cpu` for the others (and the registry account of the region). A serving image keeps its
base's flavour in its tag, so a settings file needs at most two images. Any change to the
Dockerfile or a package list changes the digest, hence the tag: endpoints created afterwards
run the new image, existing ones keep theirs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

from mme_factory.serving_image import ServingImageError, image_digest
from mme_factory.settings import Settings
from mme_factory.settings.sagemaker import ECR_IMAGE_URI

STOCK_REPOSITORY = "sagemaker-tritonserver"
DIGEST_CHARS = 12


@dataclass(frozen=True)
class EcrImage:
    registry: str  # 123456789012.dkr.ecr.eu-west-1.amazonaws.com
    account: str
    region: str
    domain: str  # amazonaws.com, or amazonaws.com.cn in the China regions
    repository: str
    tag: str | None
    digest: str | None  # sha256:...

    @classmethod
    def parse(cls, uri: str) -> EcrImage:
        match = ECR_IMAGE_URI.fullmatch(uri)
        if match is None:
            raise ServingImageError(f"{uri!r} is not an ECR image URI")
        return cls(**{field: match.group(field) for field in cls.__dataclass_fields__})

    @property
    def cpu(self) -> bool:
        return bool(self.tag and re.search(r"-cpu(?:-|$)", self.tag))


@dataclass(frozen=True)
class ServingImage:
    uri: str
    base: str  # the stock image it is built FROM
    kinds: tuple[str, ...]  # the model kinds whose endpoints run it

    @property
    def cpu(self) -> bool:
        return EcrImage.parse(self.base).cpu


def stock_image_uri(settings: Settings, instance_type: str) -> str:
    """SageMaker's Triton image for the instance type: the base the serving image builds on."""
    return _stock_image(settings.region, settings.sagemaker.triton_version, instance_type)


# The sagemaker SDK reads its image table from disk on every lookup (~0.1 s), and one
# registration or listing asks for the same few instance types several times.
@cache
def _stock_image(region: str, triton_version: str, instance_type: str) -> str:
    from sagemaker.core import image_uris

    try:
        return image_uris.retrieve(
            STOCK_REPOSITORY, region, version=triton_version, instance_type=instance_type
        )
    except ValueError as error:
        raise ServingImageError(
            f"no SageMaker Triton image {triton_version} for {instance_type} in {region}: "
            f"{error}; change sagemaker.triton_version, sagemaker.instance_types or region"
        ) from None


def serving_image_uri(settings: Settings, instance_type: str) -> str:
    """The image CreateModel names for an endpoint on `instance_type`: never the stock one."""
    sm = settings.sagemaker
    if sm.image_uri is not None:
        _check_explicit_image(settings)
        return sm.image_uri
    stock = EcrImage.parse(stock_image_uri(settings, instance_type))
    registry = f"{sm.account_id}.dkr.ecr.{settings.region}.{stock.domain}"
    return f"{registry}/{sm.image_repository}:{stock.tag}-{image_digest()[:DIGEST_CHARS]}"


def serving_images(settings: Settings) -> list[ServingImage]:
    """One image per stock base that the configured instance types need (GPU first)."""
    grouped: dict[tuple[str, str], list[str]] = {}
    for kind, instance_type in settings.sagemaker.instance_types.items():
        key = (serving_image_uri(settings, instance_type), stock_image_uri(settings, instance_type))
        grouped.setdefault(key, []).append(kind)
    images = [ServingImage(uri, base, tuple(kinds)) for (uri, base), kinds in grouped.items()]
    return sorted(images, key=lambda image: (image.cpu, image.uri))


def _check_explicit_image(settings: Settings) -> None:
    image = EcrImage.parse(str(settings.sagemaker.image_uri))
    if image.region != settings.region:
        raise ServingImageError(
            f"sagemaker.image_uri is in {image.region} but the endpoints are in "
            f"{settings.region}: SageMaker pulls a model's image from its own region's ECR; "
            "push the image there or leave sagemaker.image_uri null"
        )
    flavours = {
        EcrImage.parse(stock_image_uri(settings, instance_type)).cpu: instance_type
        for instance_type in settings.sagemaker.instance_types.values()
    }
    if len(flavours) > 1:
        raise ServingImageError(
            "sagemaker.image_uri names one image for every kind, but sagemaker.instance_types "
            f"need a GPU base ({flavours[False]}) and a CPU base ({flavours[True]}): leave "
            "sagemaker.image_uri null so that each base gets its own serving image"
        )
