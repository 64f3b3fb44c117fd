import re

import pytest

from mme_factory.errors import SettingsError
from mme_factory.settings import load_settings
from test_support.paths import REPO


def test_defaults_are_the_embedded_local_stack():
    settings = load_settings(environ={})
    assert settings.is_local_store
    assert settings.endpoints.sagemaker_endpoint_url.startswith("http://127.0.0.1:")
    assert settings.memory.budget_bytes == int(16 * 1024**3 * 0.8)


def test_local_settings_file_matches_the_built_in_defaults():
    assert load_settings(REPO / "config" / "local.yaml", environ={}) == load_settings(environ={})


def test_production_example_points_at_aws():
    settings = load_settings(REPO / "config" / "aws.example.yaml", environ={})
    assert settings.store.startswith("s3://")
    assert settings.endpoints.sagemaker_endpoint_url is None
    assert not settings.is_local_store


def test_environment_overrides_the_file(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("env: staging\nvalidation:\n  max_text_chars: 100\n")
    settings = load_settings(
        path,
        environ={
            "MME_FACTORY_VALIDATION__MAX_TEXT_CHARS": "40",
            "MME_FACTORY_MEMORY__BUDGET": "2GiB",
        },
    )
    assert settings.env == "staging"
    assert settings.validation.max_text_chars == 40
    assert settings.memory.budget_bytes == 2 * 1024**3


def test_settings_file_named_by_environment_variable(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("region: eu-west-1\n")
    assert load_settings(environ={"MME_FACTORY_SETTINGS": str(path)}).region == "eu-west-1"


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"MME_FACTORY_VALIDATON__MAX_TEXT_CHARS": "1"}, "unknown setting 'validaton'"),
        ({"MME_FACTORY_ENV": "Prod!"}, "MME_FACTORY_ENV='Prod!'"),
        ({"MME_FACTORY_VALIDATION__MIN_INTENTS": "many"}, "validation.min_intents"),
        ({"MME_FACTORY_VALIDATION__MAX_DUPLICATE_FRACTION": "1.5"}, "max_duplicate_fraction"),
        ({"MME_FACTORY_MEMORY__BUDGET": "40GiB"}, "exceeds instance_memory"),
        ({"MME_FACTORY_REGION__X": "1"}, "'region' is not a section"),
    ],
)
def test_bad_environment_values_are_refused_with_the_variable_named(environ, message):
    with pytest.raises(SettingsError, match=re.escape(message)):
        load_settings(environ=environ)


def test_unknown_key_in_file_is_refused(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("validation:\n  max_txt_chars: 5\n")
    with pytest.raises(SettingsError, match=r"validation\.max_txt_chars.*in .*s\.yaml"):
        load_settings(path, environ={})


@pytest.mark.parametrize("text", ["- a\n- b\n", "env: [unclosed\n"])
def test_malformed_file_is_refused(tmp_path, text):
    path = tmp_path / "s.yaml"
    path.write_text(text)
    with pytest.raises(SettingsError, match=r"s\.yaml"):
        load_settings(path, environ={})


def test_missing_file_is_refused(tmp_path):
    with pytest.raises(SettingsError, match="does not exist"):
        load_settings(tmp_path / "absent.yaml", environ={})


def test_the_store_follows_the_state_directory_unless_named():
    assert load_settings(environ={}).store == ".mme-factory/store"
    moved = load_settings(environ={"MME_FACTORY_STATE_DIR": "/srv/mme"})
    assert moved.store == "/srv/mme/store"
    named = {"MME_FACTORY_STATE_DIR": "/srv/mme", "MME_FACTORY_STORE": "s3://bucket/prefix"}
    assert load_settings(environ=named).store == "s3://bucket/prefix"


def test_the_gate_significance_is_a_probability_below_one_half():
    gate = {"MME_FACTORY_TRAINING__GATE_SIGNIFICANCE": "0.5"}
    with pytest.raises(SettingsError, match=r"training\.gate_significance"):
        load_settings(environ=gate)
