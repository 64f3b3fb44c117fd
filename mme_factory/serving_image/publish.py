"""Build the serving images and push them to ECR (`mme-factory serving-image --push`).

    ECR repository <image_repository>   created when missing, tags immutable
    docker login                        the stock image's registry, then the target registry
    per image (GPU `-py3`, CPU `-py3-cpu`):
      docker build --platform linux/amd64 --build-arg BASE_IMAGE=<stock> -t <uri> <this folder>
      docker push <uri>

The plan is plain data (argv lists, and the same steps as a shell script for machines where
they have to run by hand), so what would run can be printed and tested without Docker or AWS.
"""

from __future__ import annotations

import base64
import shlex
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from mme_factory.aws_clients import ecr_client, sts_client
from mme_factory.serving_image import SERVING_IMAGE_DIR, ServingImageError
from mme_factory.serving_image.image_uri import EcrImage, ServingImage, serving_images
from mme_factory.settings import Settings

# SageMaker hosts x86_64 instances; on an arm64 machine Docker would otherwise build for arm64.
PLATFORM = "linux/amd64"
DOCKER_INFO_TIMEOUT_S = 30
LOGIN_TIMEOUT_S = 120
BUILD_TIMEOUT_S = 3600  # the base image is ~10 GB
PUSH_TIMEOUT_S = 3600

Say = Callable[[str], None]


@dataclass(frozen=True)
class PushPlan:
    region: str
    repository: str  # the target repository in ECR, one for every flavour
    images: tuple[ServingImage, ...]
    context: Path = SERVING_IMAGE_DIR

    @property
    def registries(self) -> list[str]:
        """Where `docker login` is needed: the stock images' registries, then the target's."""
        bases = [EcrImage.parse(image.base).registry for image in self.images]
        targets = [EcrImage.parse(image.uri).registry for image in self.images]
        return list(dict.fromkeys(bases + targets))

    def build_command(self, image: ServingImage) -> list[str]:
        build_args = ["--build-arg", f"BASE_IMAGE={image.base}"]
        tag = ["-t", image.uri]
        return ["docker", "build", "--platform", PLATFORM, *build_args, *tag, str(self.context)]

    def push_command(self, image: ServingImage) -> list[str]:
        return ["docker", "push", image.uri]

    def shell_script(self) -> list[str]:
        """The same steps with the AWS CLI, for a machine with Docker and credentials."""
        region, repository = shlex.quote(self.region), shlex.quote(self.repository)
        lines = [
            f"aws ecr describe-repositories --region {region} --repository-names {repository}"
            f" >/dev/null 2>&1 || aws ecr create-repository --region {region}"
            f" --repository-name {repository} --image-tag-mutability IMMUTABLE",
        ]
        lines += [
            f"aws ecr get-login-password --region {region}"
            f" | docker login --username AWS --password-stdin {registry}"
            for registry in self.registries
        ]
        for image in self.images:
            lines += [shlex.join(self.build_command(image)), shlex.join(self.push_command(image))]
        return lines


def push_plan(settings: Settings) -> PushPlan:
    """What `serving-image --push` builds for these settings: one image per base flavour."""
    images = tuple(serving_images(settings))
    targets = {EcrImage.parse(image.uri) for image in images}
    pinned = [str(image.digest) for image in targets if image.digest]
    if pinned:
        raise ServingImageError(
            f"sagemaker.image_uri is pinned by digest ({pinned[0]}): there is nothing to build; "
            "registration uses it as it is. Give it a tag, or leave it null, to build one"
        )
    repositories = {image.repository for image in targets}
    return PushPlan(settings.region, repositories.pop(), images)


def docker_engine_problem(timeout_s: float = DOCKER_INFO_TIMEOUT_S) -> str | None:
    """None when `docker info` answers; else what is wrong and how to fix it."""
    try:
        answer = subprocess.run(
            ["docker", "info", "--format", "{{.ServerVersion}}"],
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
    except FileNotFoundError:
        return "no `docker` command on PATH: install Docker (Engine or Desktop)"
    except subprocess.TimeoutExpired:
        return f"`docker info` did not answer in {timeout_s:.0f} s: check that Docker is running"
    if answer.returncode != 0:
        lines = (answer.stderr or answer.stdout).strip().splitlines()
        detail = lines[-1] if lines else f"exit {answer.returncode}"
        return f"no Docker engine answers ({detail}): start Docker, or set DOCKER_HOST"
    return None


def aws_account(settings: Settings) -> tuple[str | None, str | None]:
    """(the credentials' account, None), or (None, what is missing and how to fix it)."""
    try:
        return sts_client(settings).get_caller_identity()["Account"], None
    except (BotoCoreError, ClientError) as error:
        return None, (
            f"no usable AWS credentials ({error}): run `aws configure` or `aws sso login`, "
            "or set AWS_PROFILE"
        )


def push_problems(plan: PushPlan, settings: Settings) -> list[str]:
    """What stops `--push` on this machine: no Docker engine, no or other AWS credentials."""
    problems = [problem for problem in [docker_engine_problem()] if problem]
    account, missing = aws_account(settings)
    owners = sorted({EcrImage.parse(image.uri).account for image in plan.images})
    if missing:
        problems.append(missing)
    elif account not in owners:
        problems.append(
            f"the AWS credentials are for account {account} but the image goes to account "
            f"{owners[0]} (sagemaker.role_arn's, or sagemaker.image_uri's): use that account's "
            "credentials, or change the setting"
        )
    return problems


def ensure_repository(ecr: Any, repository: str) -> bool:
    """Create the ECR repository when missing; True if it was created."""
    try:
        ecr.describe_repositories(repositoryNames=[repository])
        return False
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") != "RepositoryNotFoundException":
            raise ServingImageError(f"cannot read ECR repository {repository}: {error}") from None
    try:
        # Tags name the package lists' digest, so a tag never has to point at other bytes.
        ecr.create_repository(repositoryName=repository, imageTagMutability="IMMUTABLE")
    except ClientError as error:
        raise ServingImageError(
            f"cannot create ECR repository {repository}: {error}; the credentials need "
            "ecr:CreateRepository, or create it once by hand"
        ) from None
    return True


def pushed_tags(ecr: Any, repository: str, tags: list[str]) -> set[str]:
    """Which of `tags` the repository already holds."""
    found = set()
    for tag in tags:
        try:
            ecr.describe_images(repositoryName=repository, imageIds=[{"imageTag": tag}])
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "ImageNotFoundException":
                raise ServingImageError(f"cannot list images of {repository}: {error}") from None
        else:
            found.add(tag)
    return found


def docker_login(ecr: Any, registries: list[str]) -> None:
    """`docker login` to each registry with one ECR token (it opens every registry we may read)."""
    try:
        token = ecr.get_authorization_token()["authorizationData"][0]["authorizationToken"]
    except ClientError as error:
        raise ServingImageError(
            f"cannot get an ECR login token: {error}; the credentials need "
            "ecr:GetAuthorizationToken"
        ) from None
    password = base64.b64decode(token).decode().split(":", 1)[1]
    for registry in registries:
        _run(
            ["docker", "login", "--username", "AWS", "--password-stdin", registry],
            LOGIN_TIMEOUT_S,
            f"check that Docker can reach {registry} and the credentials may pull from it",
            stdin=password,
        )


def push_serving_images(plan: PushPlan, settings: Settings, say: Say = print) -> list[str]:
    """Create the repository, log in, build and push each image not yet in ECR; their URIs."""
    ecr = ecr_client(settings)
    tags = [str(EcrImage.parse(image.uri).tag) for image in plan.images]
    try:
        if ensure_repository(ecr, plan.repository):
            say(f"created ECR repository {plan.repository} in {plan.region}")
        present = pushed_tags(ecr, plan.repository, tags)
        todo = [image for image, tag in zip(plan.images, tags, strict=True) if tag not in present]
        for image in plan.images:
            if image not in todo:
                say(f"{image.uri}: already in ECR (its tag is the package lists' digest)")
        if todo:
            docker_login(ecr, PushPlan(plan.region, plan.repository, tuple(todo)).registries)
    except BotoCoreError as error:
        raise ServingImageError(f"cannot reach ECR in {plan.region}: {error}") from None
    for image in todo:
        say(f"building {image.uri} from {image.base}")
        _run(
            plan.build_command(image),
            BUILD_TIMEOUT_S,
            "read the build output above; a failed `pip check` means requirements-lock.txt "
            "conflicts with what the base image has (change the pins, then `make lock`)",
        )
        say(f"pushing {image.uri}")
        _run(
            plan.push_command(image),
            PUSH_TIMEOUT_S,
            f"check that the credentials may push to {plan.repository} "
            "(ecr:InitiateLayerUpload, ecr:UploadLayerPart, ecr:CompleteLayerUpload, ecr:PutImage)",
        )
    return [image.uri for image in todo]


def _run(argv: list[str], timeout_s: float, fix: str, stdin: str | None = None) -> None:
    command = shlex.join(argv)
    try:
        # Build and push output goes straight to the terminal: they take minutes.
        answer = subprocess.run(
            argv,
            input=stdin,
            text=True,
            timeout=timeout_s,
            check=False,
            capture_output=stdin is not None,
        )
    except FileNotFoundError:
        raise ServingImageError(f"`{argv[0]}` not found on PATH: install Docker") from None
    except subprocess.TimeoutExpired:
        raise ServingImageError(f"`{command}` did not finish in {timeout_s:.0f} s: {fix}") from None
    if answer.returncode != 0:
        detail = (answer.stderr or "").strip().splitlines()[-1:] if stdin is not None else []
        reason = f" ({detail[0]})" if detail else ""
        raise ServingImageError(f"`{command}` failed with exit {answer.returncode}{reason}: {fix}")
