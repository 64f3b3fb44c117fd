"""The serving image: its URI from settings, the build-and-push plan, the command, registration."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest

from cli.main import main
from mme_factory import serving_image
from mme_factory.aws_clients import ecr_client, sagemaker_client
from mme_factory.errors import SettingsError
from mme_factory.serving_image import ServingImageError, image_digest
from mme_factory.serving_image.image_uri import serving_image_uri, serving_images, stock_image_uri
from mme_factory.serving_image.publish import (
    aws_account,
    ensure_repository,
    push_plan,
    push_problems,
    pushed_tags,
)
from mme_factory.settings import Settings, load_settings
from mme_factory.store import open_store
from mme_local.service import MmeLocalService
from tasks.deployment.publish.register_mme import ensure_endpoint, model_data_url
from test_support.fake_model_server import FakeModelServer
from test_support.mme_local_harness import ServiceInThread
from test_support.moto_aws import fake_credentials

ROLE = "arn:aws:iam::123456789012:role/mme-factory-sagemaker"
GPU_BASE = "763104351884.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-tritonserver:24.09-py3"
CPU_BASE = f"{GPU_BASE}-cpu"
REGISTRY = "123456789012.dkr.ecr.eu-west-1.amazonaws.com"


def aws_settings(tmp_path: Path, **sagemaker: object) -> Settings:
    """Settings like config/aws.example.yaml: eu-west-1, the role of account 123456789012."""
    values = {
        "region": "eu-west-1",
        "state_dir": str(tmp_path / "state"),
        "sagemaker": {"role_arn": ROLE, **sagemaker},
    }
    path = tmp_path / "aws.yaml"
    path.write_text(json.dumps(values), encoding="utf-8")
    return load_settings(path, environ={})


def test_derived_uri_has_the_roles_account_the_region_and_the_digest_tag(tmp_path):
    settings = aws_settings(tmp_path)
    tag = f"24.09-py3-{image_digest()[:12]}"
    assert serving_image_uri(settings, "ml.g4dn.xlarge") == f"{REGISTRY}/mme-factory-triton:{tag}"
    assert stock_image_uri(settings, "ml.g4dn.xlarge") == GPU_BASE


def test_cpu_instance_type_gets_the_cpu_base_and_tag(tmp_path):
    settings = aws_settings(tmp_path, image_repository="team/triton")
    uri = serving_image_uri(settings, "ml.c5.2xlarge")
    assert uri == f"{REGISTRY}/team/triton:24.09-py3-cpu-{image_digest()[:12]}"
    assert stock_image_uri(settings, "ml.c5.2xlarge") == CPU_BASE


def test_one_image_per_base_the_instance_types_need(tmp_path):
    types = {"embedding": "ml.c5.2xlarge", "classifier": "ml.g4dn.xlarge"}
    gpu, cpu = serving_images(aws_settings(tmp_path, instance_types=types))
    assert (gpu.base, gpu.kinds, gpu.cpu) == (GPU_BASE, ("classifier",), False)
    assert (cpu.base, cpu.kinds, cpu.cpu) == (CPU_BASE, ("embedding",), True)


def test_a_changed_package_list_gives_a_new_tag(tmp_path, monkeypatch):
    settings = aws_settings(tmp_path)
    before = serving_image_uri(settings, "ml.g4dn.xlarge")
    requirements = tmp_path / "requirements.txt"
    requirements.write_text(serving_image.REQUIREMENTS.read_text() + "regex==2024.11.6\n")
    monkeypatch.setattr(serving_image, "REQUIREMENTS", requirements)
    after = serving_image_uri(settings, "ml.g4dn.xlarge")
    assert after != before
    assert after.startswith(f"{REGISTRY}/mme-factory-triton:24.09-py3-")


def test_an_explicit_image_uri_wins(tmp_path):
    explicit = f"{REGISTRY}/elsewhere@sha256:{'ab' * 32}"
    settings = aws_settings(tmp_path, image_uri=explicit)
    assert serving_image_uri(settings, "ml.g4dn.2xlarge") == explicit
    assert [image.uri for image in serving_images(settings)] == [explicit]
    with pytest.raises(ServingImageError, match="pinned by digest"):
        push_plan(settings)


@pytest.mark.parametrize(
    "image_uri",
    [
        "tritonserver:24.09",
        "12345678901.dkr.ecr.eu-west-1.amazonaws.com/repo:tag",  # 11-digit account
        f"{REGISTRY}/repo",  # neither tag nor digest
        f"{REGISTRY}/Repo:tag",  # ECR repositories are lowercase
        "123456789012.dkr.ecr.eu-west-1.example.com/repo:tag",
        f"{REGISTRY}/repo@sha256:short",
    ],
)
def test_malformed_image_uri_is_refused(tmp_path, image_uri):
    with pytest.raises(SettingsError, match=r"sagemaker\.image_uri: .*not an ECR image URI"):
        aws_settings(tmp_path, image_uri=image_uri)


def test_malformed_image_repository_is_refused(tmp_path):
    with pytest.raises(SettingsError, match=r"sagemaker\.image_repository"):
        aws_settings(tmp_path, image_repository="Not/A Repo")


def test_explicit_image_in_another_region_is_refused(tmp_path):
    settings = aws_settings(tmp_path, image_uri="123456789012.dkr.ecr.us-east-1.amazonaws.com/r:1")
    with pytest.raises(ServingImageError, match="own region's ECR"):
        serving_image_uri(settings, "ml.g4dn.xlarge")


def test_one_explicit_image_for_gpu_and_cpu_bases_is_refused(tmp_path):
    types = {"embedding": "ml.c5.2xlarge", "classifier": "ml.g4dn.xlarge"}
    settings = aws_settings(tmp_path, image_uri=f"{REGISTRY}/r:1", instance_types=types)
    with pytest.raises(ServingImageError, match=r"leave sagemaker\.image_uri null"):
        serving_image_uri(settings, "ml.g4dn.xlarge")


def test_print_shows_the_exact_base_build_arg_tag_and_push(tmp_path, capsys):
    types = {"embedding": "ml.c5.2xlarge", "classifier": "ml.g4dn.xlarge"}
    settings = aws_settings(tmp_path, instance_types=types)
    gpu, cpu = (image.uri for image in serving_images(settings))
    assert main(["--settings", str(tmp_path / "aws.yaml"), "serving-image", "--print"]) == 0
    lines = capsys.readouterr().out.splitlines()
    context = shlex.quote(str(serving_image.SERVING_IMAGE_DIR))
    assert f"# {gpu}" in lines and f"#   FROM {CPU_BASE}" in lines
    assert (
        f"docker build --platform linux/amd64 --build-arg BASE_IMAGE={GPU_BASE} -t {gpu} {context}"
    ) in lines
    assert (
        f"docker build --platform linux/amd64 --build-arg BASE_IMAGE={CPU_BASE} -t {cpu} {context}"
    ) in lines
    assert f"docker push {gpu}" in lines and f"docker push {cpu}" in lines
    logins = [line for line in lines if "docker login" in line]
    assert [line.rsplit(" ", 1)[1] for line in logins] == [GPU_BASE.split("/")[0], REGISTRY]
    assert lines.index(f"docker push {gpu}") > lines.index(logins[-1])


def test_push_without_credentials_says_what_is_missing_and_exits_1(tmp_path, capsys, no_aws):
    aws_settings(tmp_path)
    assert main(["--settings", str(tmp_path / "aws.yaml"), "serving-image", "--push"]) == 1
    captured = capsys.readouterr()
    assert "cannot push: no usable AWS credentials" in captured.err
    assert "credentials of account 123456789012" in captured.err
    assert f"docker push {REGISTRY}/mme-factory-triton:24.09-py3-" in captured.out


def test_without_options_the_command_lists_the_images(tmp_path, capsys):
    settings = aws_settings(tmp_path)
    assert main(["--settings", str(tmp_path / "aws.yaml"), "serving-image"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[:2] == [serving_images(settings)[0].uri, f"  FROM {GPU_BASE}"]


@pytest.fixture
def no_aws(monkeypatch, tmp_path):
    """No credentials anywhere botocore looks: environment, files, instance metadata."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    for name in ("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_WEB_IDENTITY_TOKEN_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.fixture
def moto_aws(moto_server, monkeypatch):
    """ECR and STS of moto's server (account 123456789012) through the clients of aws_clients."""
    fake_credentials(monkeypatch)
    monkeypatch.setenv("AWS_ENDPOINT_URL_ECR", moto_server.url)
    monkeypatch.setenv("AWS_ENDPOINT_URL_STS", moto_server.url)


@pytest.mark.integration
def test_the_ecr_repository_is_created_once(tmp_path, moto_aws):
    settings = aws_settings(tmp_path, image_repository=f"mme-test-{tmp_path.name.lower()}")
    ecr = ecr_client(settings)
    repository = settings.sagemaker.image_repository
    assert ensure_repository(ecr, repository) is True
    assert ensure_repository(ecr, repository) is False
    described = ecr.describe_repositories(repositoryNames=[repository])["repositories"][0]
    assert described["imageTagMutability"] == "IMMUTABLE"
    assert pushed_tags(ecr, repository, ["24.09-py3-0123456789ab"]) == set()


@pytest.mark.integration
def test_credentials_of_another_account_are_named(tmp_path, moto_aws):
    assert aws_account(aws_settings(tmp_path)) == ("123456789012", None)
    other = aws_settings(tmp_path, role_arn="arn:aws:iam::000000000000:role/r")
    problems = push_problems(push_plan(other), other)
    assert any("credentials are for account 123456789012" in p for p in problems)


def test_registration_creates_a_model_that_runs_the_serving_image(tmp_path):
    store = tmp_path / "store"
    local = load_settings(
        environ={"MME_FACTORY_STATE_DIR": str(tmp_path / "state"), "MME_FACTORY_STORE": str(store)}
    )
    fakes: dict[str, FakeModelServer] = {}
    with ServiceInThread(
        MmeLocalService(local, lambda name: fakes.setdefault(name, FakeModelServer()))
    ) as service:
        settings = load_settings(
            environ={
                "MME_FACTORY_STATE_DIR": str(tmp_path / "state"),
                "MME_FACTORY_STORE": str(store),
                "MME_FACTORY_ENDPOINTS__SAGEMAKER_ENDPOINT_URL": service.url,
                "MME_FACTORY_SAGEMAKER__WAIT_DELAY_S": "1",
            }
        )
        client = sagemaker_client(settings)
        data_url = model_data_url(open_store(settings.store, settings), "dev-mme-classifier")
        assert ensure_endpoint(client, settings, "classifier", data_url)
        image = client.describe_model(ModelName="dev-mme-classifier")["PrimaryContainer"]["Image"]
    assert image == serving_image_uri(settings, "ml.g4dn.xlarge")
    assert image.startswith("000000000000.dkr.ecr.us-east-1.amazonaws.com/mme-factory-triton:")
    saved = json.loads((tmp_path / "state" / "mme_local" / "state.json").read_text())
    assert saved["models"]["dev-mme-classifier"]["PrimaryContainer"]["Image"] == image
