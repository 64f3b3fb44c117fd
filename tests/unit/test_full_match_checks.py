"""A value with a trailing newline never passes a name check (`$` matches before a final `\\n`)."""

from __future__ import annotations

import pytest

from mme_factory.errors import SettingsError
from mme_factory.naming import TargetModelKey, check_customer_id
from mme_factory.serving_image.image_uri import EcrImage, ServingImageError
from mme_factory.settings import load_settings
from tasks.packaging.triton_layout import _fill

IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/mme-factory-triton:24.09-py3"


@pytest.mark.parametrize("customer", ["acme\n", "acme\r\n", "\nacme"])
def test_a_customer_id_with_a_newline_is_refused(customer):
    with pytest.raises(ValueError, match="invalid customer id"):
        check_customer_id(customer)


def test_a_target_model_key_with_a_trailing_newline_is_refused():
    assert TargetModelKey.parse("acme/classifier/v1.tar.gz").version == 1
    with pytest.raises(ValueError, match="not a TargetModel key"):
        TargetModelKey.parse("acme/classifier/v1.tar.gz\n")
    with pytest.raises(ValueError, match="not a TargetModel key"):
        TargetModelKey.parse("acme/classifier/v\u0661.tar.gz")  # an Arabic-Indic digit one


def test_an_image_uri_with_a_trailing_newline_is_refused():
    assert EcrImage.parse(IMAGE).tag == "24.09-py3"
    with pytest.raises(ServingImageError):
        EcrImage.parse(IMAGE + "\n")
    with pytest.raises(SettingsError, match="image_uri"):
        load_settings(environ={"MME_FACTORY_SAGEMAKER__IMAGE_URI": IMAGE + "\n"})


@pytest.mark.parametrize(
    "name, value",
    [
        ("ENV", "dev\n"),
        ("REGION", "us-east-1\n"),
        ("SAGEMAKER__TRITON_VERSION", "24.09\n"),
        ("SAGEMAKER__TRITON_VERSION", "\u0662\u0664.\u0660\u0669"),
        ("SAGEMAKER__IMAGE_REPOSITORY", "mme-factory-triton\n"),
    ],
)
def test_settings_patterns_refuse_a_trailing_newline(name, value):
    with pytest.raises(SettingsError):
        load_settings(environ={f"MME_FACTORY_{name}": value})


def test_a_placeholder_with_a_trailing_newline_is_not_a_whole_value():
    assert _fill("{count}", {"count": 3}, "here") == 3
    assert _fill("{count}\n", {"count": 3}, "here") == "3\n"
