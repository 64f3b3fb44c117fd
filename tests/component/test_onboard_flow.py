"""The onboard-customer flow under Prefect's test harness: failures publish nothing.

Registration runs against moto's SageMaker and S3 servers; moto's InvokeEndpoint answers with
a canned body that is not a Triton response, so the smoke step fails for real and the flow must
withdraw its uploads and leave the manifest untouched.
"""

from __future__ import annotations

import json

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

from flows.onboard_customer import onboard_customer
from mme_factory.aws_clients import s3_client
from mme_factory.errors import ValidationFailed
from mme_factory.manifest import read_manifest
from mme_factory.store import open_store
from tasks.deployment.publish.promote import promote
from tasks.deployment.publish.smoke_inference import SmokeTestFailed
from tasks.training.quality_gate import QualityGateRejected
from test_support.failing_export import failing_export_environ, keep_first_replies
from test_support.moto_aws import ensure_bucket, fake_credentials
from test_support.tiny_base_models import write_tiny_encoder
from test_support.uploaded_tarballs import uploaded

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module", autouse=True)
def prefect_harness(prefect_api_url: str) -> str:
    return prefect_api_url


@pytest.fixture
def flow_environment(moto_server, tmp_path, monkeypatch):
    fake_credentials(monkeypatch)
    encoder = write_tiny_encoder(tmp_path / "encoder")
    environ = {
        "MME_FACTORY_STATE_DIR": str(tmp_path / "state"),
        "MME_FACTORY_ENV": "flowtest",
        "MME_FACTORY_STORE": "s3://flow-artifacts",
        "MME_FACTORY_ENDPOINTS__S3_ENDPOINT_URL": moto_server.url,
        "MME_FACTORY_ENDPOINTS__SAGEMAKER_ENDPOINT_URL": moto_server.url,
        "MME_FACTORY_ENDPOINTS__SAGEMAKER_RUNTIME_ENDPOINT_URL": moto_server.url,
        "MME_FACTORY_SAGEMAKER__WAIT_DELAY_S": "1",
        "MME_FACTORY_SAGEMAKER__INVOKE_RETRIES": "0",
        "MME_FACTORY_TRAINING__CLASSIFIER__BASE_MODEL": str(encoder),
        "MME_FACTORY_TRAINING__CLASSIFIER__EPOCHS": "2",
        "MME_FACTORY_TRAINING__CLASSIFIER__MIN_ACCURACY": "0",
        "MME_FACTORY_TRAINING__CLASSIFIER__TRAIN_TOKEN_EMBEDDINGS": "true",
    }
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    from mme_factory.settings import load_settings

    settings = load_settings()
    ensure_bucket(s3_client(settings), "flow-artifacts")
    return settings


def test_invalid_data_stops_at_validation_with_nothing_uploaded(flow_environment, acme_copy):
    (acme_copy / "intents.csv").write_text("text,intent\n,x\n", encoding="utf-8")
    with pytest.raises(ValidationFailed):
        onboard_customer(customer_id="badco", data_uri=str(acme_copy), kinds=["classifier"])
    store = open_store(flow_environment.store, flow_environment)
    assert not [key for key in store.list_keys() if "badco" in key]


def test_gate_rejection_stops_before_packaging(flow_environment, acme_copy):
    with pytest.raises(QualityGateRejected):
        onboard_customer(
            customer_id="gateco",
            data_uri=str(acme_copy),
            kinds=["classifier"],
            overrides={
                "training.classifier.min_accuracy": "1.0",
                "training.classifier.epochs": "1",
            },
        )
    runs = flow_environment.runs_dir / "gateco"
    run = next(runs.iterdir())
    assert not (run / "packages").exists() and not list(run.rglob("*.tar.gz"))


def test_failed_export_fails_the_flow_and_its_artifact_keeps_the_metrics(
    flow_environment, acme_copy, tmp_path, monkeypatch
):
    for name, value in failing_export_environ(tmp_path / "encoder").items():
        monkeypatch.setenv(name, value)
    state = onboard_customer(
        customer_id="exportco",
        data_uri=str(keep_first_replies(acme_copy)),
        kinds=["autocomplete"],
        return_state=True,
    )
    assert state.is_failed() and "TrainingFailed: autocomplete: export failed" in state.message
    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(
                flow_run_id=ArtifactFilterFlowRunId(any_=[state.state_details.flow_run_id])
            )
        )
    (training,) = [a.data for a in artifacts if a.key == "training-autocomplete"]
    assert training.startswith("# autocomplete: failed")
    assert "**export failed**: `ExportParityError`" in training
    assert "| perplexity_per_word |" in training and "## Quality gate" in training
    (run,) = (flow_environment.runs_dir / "exportco").iterdir()
    outcome = json.loads((run / "run.json").read_text())["kinds"]["autocomplete"]
    assert outcome["status"] == "failed" and outcome["failure"]["stage"] == "export"
    assert not (run / "package").exists()
    store = open_store(flow_environment.store, flow_environment)
    assert not [key for key in store.list_keys() if "exportco" in key]


def test_smoke_failure_withdraws_uploads_and_keeps_the_manifest(flow_environment, acme_copy):
    store = open_store(flow_environment.store, flow_environment)
    previous = {
        "endpoint": "flowtest-mme-classifier",
        "version": 1,
        "targets": {"classifier": "smokeco/classifier/v1.tar.gz"},
    }
    promote(store, "smokeco", uploaded(store, {"classifier": previous}))
    before = store.read_bytes("registry/smokeco.json")
    with pytest.raises(SmokeTestFailed):
        onboard_customer(customer_id="smokeco", data_uri=str(acme_copy), kinds=["classifier"])
    assert store.read_bytes("registry/smokeco.json") == before
    assert read_manifest(store, "smokeco").models["classifier"].version == 1
    assert [
        key
        for key in store.list_keys("mme/")
        if key.startswith("mme/flowtest-mme-classifier/smokeco/")
    ] == ["mme/flowtest-mme-classifier/smokeco/classifier/v1.tar.gz"]
