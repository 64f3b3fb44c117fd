"""prefect.yaml's deployments applied to a real Prefect server for both targets: the process
pool, and the Kubernetes pool with the pipeline image and each job's resources."""

from __future__ import annotations

import shutil
from pathlib import Path

import httpx
import pytest
from prefect.client.orchestration import get_client
from prefect.exceptions import PrefectHTTPStatusError
from prefect.utilities.templating import apply_values

from deployments import declarations, pipeline_image
from deployments.apply import apply_deployments
from deployments.work_pools import K8S_POOL, LOCAL_POOL
from mme_factory.errors import MmeFactoryError
from mme_factory.settings import load_settings

pytestmark = pytest.mark.integration

ROOT = declarations.PROJECT_ROOT
GPU = "nvidia.com/gpu"


@pytest.fixture(scope="module")
def api_url(prefect_api_url: str) -> str:
    return prefect_api_url


@pytest.fixture(scope="module")
def settings_file() -> Path:
    path = ROOT / "config" / "aws.example.yaml"
    assert path.is_file(), "the production settings example the image carries"
    return path


@pytest.fixture(scope="module")
def production(api_url, settings_file, tmp_path_factory):
    state_dir = tmp_path_factory.mktemp("production")
    return apply_deployments("production", api_url, state_dir, str(settings_file), {})


def _deployments() -> dict:
    with get_client(sync_client=True) as client:
        return {d.name: d for d in client.read_deployments()}


def _pool_template(name: str) -> dict:
    with get_client(sync_client=True) as client:
        return client.read_work_pool(name).base_job_template


def _job_manifest(template: dict, job_variables: dict) -> dict:
    """The Kubernetes Job the worker would create, rendered as Prefect's workers render it."""
    properties = template["variables"]["properties"]
    values = {name: spec["default"] for name, spec in properties.items() if "default" in spec}
    configuration = apply_values(template["job_configuration"], {**values, **job_variables})
    return configuration["job_manifest"]


def test_local_target_puts_every_existing_flow_on_the_process_pool(api_url, tmp_path):
    applied = apply_deployments(
        "local", api_url, tmp_path, None, {"MME_FACTORY_STORE": str(tmp_path / "store")}
    )
    declared = [entry["name"] for entry in declarations.read_prefect_file()["deployments"]]
    assert set(applied.names) | {reason.split(":")[0] for reason in applied.skipped} == set(
        declared
    )
    assert {"onboard-customer", "warmup"} <= set(applied.names)
    deployments = _deployments()
    assert set(applied.names) <= set(deployments)
    warm = deployments["warmup"]
    assert warm.work_pool_name == LOCAL_POOL.name
    assert [s.schedule.cron for s in warm.schedules] == ["0 * * * *"]
    assert warm.pull_steps == [
        {"prefect.deployments.steps.set_working_directory": {"directory": str(ROOT)}}
    ]
    assert warm.job_variables == {"env": {"MME_FACTORY_STORE": str(tmp_path / "store")}}
    assert deployments["onboard-customer"].schedules == []
    if "retrain-fleet" in deployments:
        assert [s.schedule.cron for s in deployments["retrain-fleet"].schedules] == ["0 3 * * 1"]
    assert _pool_template(LOCAL_POOL.name)["job_configuration"]["command"] == "{{ command }}"


def test_production_target_runs_the_pipeline_image_with_gpu_for_onboarding(
    production, settings_file
):
    applied = production
    image = pipeline_image.pipeline_image_uri(load_settings(settings_file))
    deployments = _deployments()
    template = _pool_template(K8S_POOL.name)
    in_image = f"/opt/mme-factory/{settings_file.relative_to(ROOT)}"
    for name in applied.names:
        deployment = deployments[name]
        assert deployment.work_pool_name == K8S_POOL.name
        assert deployment.job_variables["image"] == image
        assert deployment.job_variables["env"] == {"MME_FACTORY_SETTINGS": in_image}
        assert deployment.pull_steps == [
            {"prefect.deployments.steps.set_working_directory": {"directory": "/opt/mme-factory"}}
        ]

    onboard = _job_manifest(template, deployments["onboard-customer"].job_variables)
    pod = onboard["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["image"] == image
    assert container["resources"]["limits"][GPU] == 1
    assert container["resources"]["requests"] == {"cpu": "4", "memory": "16Gi"}
    assert pod["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    assert pod["tolerations"][0]["key"] == GPU

    warm = _job_manifest(template, deployments["warmup"].job_variables)
    container = warm["spec"]["template"]["spec"]["containers"][0]
    assert GPU not in container["resources"]["limits"]
    assert container["resources"]["requests"] == {"cpu": "500m", "memory": "1Gi"}
    assert "nodeSelector" not in warm["spec"]["template"]["spec"]
    assert [s.schedule.cron for s in deployments["warmup"].schedules] == ["0 * * * *"]


def test_the_kubernetes_pool_refuses_a_job_variable_it_does_not_declare(production):
    with get_client(sync_client=True) as client:
        warm = client.read_deployment_by_name("warmup/warmup")
        with pytest.raises(PrefectHTTPStatusError) as refused:
            client.create_deployment(
                flow_id=warm.flow_id,
                name="typo",
                work_pool_name=K8S_POOL.name,
                job_variables={"gpu_limt": 1},
            )
    assert refused.value.response.status_code == httpx.codes.UNPROCESSABLE_ENTITY


def test_an_entry_whose_flow_file_is_missing_is_skipped_and_named(tmp_path):
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "here.py").write_text("")
    document = {
        "deployments": [
            {"name": "here", "entrypoint": "flows/here.py:f", "work_pool": {"name": "p"}},
            {"name": "later", "entrypoint": "flows/later.py:f", "work_pool": {"name": "p"}},
        ]
    }
    resolved = declarations.resolve("local", {}, document, project_root=tmp_path)
    assert resolved.names == ["here"]
    assert resolved.skipped == ["later: flows/later.py does not exist"]


def test_production_settings_outside_the_repository_are_refused(tmp_path):
    outside = tmp_path / "aws.yaml"
    outside.write_text("{}\n")
    with pytest.raises(MmeFactoryError, match="outside the repository"):
        declarations.settings_environment(str(outside), {}, "production")


def test_the_image_tag_follows_the_lock_file_and_the_sources(tmp_path):
    copy = tmp_path / "repo"
    for path in pipeline_image.build_inputs():
        if path.is_file():
            target = copy / path.relative_to(ROOT)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
    first = pipeline_image.image_digest(copy)
    assert pipeline_image.image_digest(copy) == first
    lock = copy / "locks" / "pipeline.txt"
    lock.parent.mkdir(parents=True, exist_ok=True)
    lock.write_text(lock.read_text() + "extra==1.0\n" if lock.exists() else "extra==1.0\n")
    second = pipeline_image.image_digest(copy)
    assert second != first
    (copy / "flows" / "warmup.py").write_text("# changed\n")
    assert pipeline_image.image_digest(copy) != second
