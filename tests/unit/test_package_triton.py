"""Packaging exported models as Triton repositories: names, layout, reproducibility, validation."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from cli.main import main
from mme_factory.settings import Settings, load_settings
from tasks.packaging.model_tarball import extract_tarball, tarball_names
from tasks.packaging.package_triton import PackageSummary, package_triton
from tasks.packaging.triton_config import PackagingError, parse_config
from tasks.packaging.triton_layout import TRITON_MODELS
from test_support.tiny_exports import write_tiny_run


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_run(tmp_path_factory.mktemp("state"), "acme", "run-1", seed=1)


@pytest.fixture(scope="module")
def packaged(tiny_run: Path, tmp_path_factory: pytest.TempPathFactory) -> PackageSummary:
    out = tmp_path_factory.mktemp("package")
    return package_triton(tiny_run, load_settings(environ={}), output_dir=out)


@pytest.fixture
def layouts(tmp_path: Path) -> Path:
    """A writable copy of triton_models/, for tests that change a layout or add code."""
    return Path(shutil.copytree(TRITON_MODELS, tmp_path / "triton_models", symlinks=False))


def test_every_exported_model_becomes_one_tarball(packaged: PackageSummary) -> None:
    targets = [package.target for package in packaged.packages]
    assert targets == ["embedding-query", "embedding-article", "classifier", "autocomplete"]
    assert all(Path(package.tarball).name == "model.tar.gz" for package in packaged.packages)
    assert Path(packaged.packages[0].tarball).parent.parent.joinpath("summary.json").is_file()


def test_triton_names_are_unique_per_customer_kind_role_and_version(
    packaged: PackageSummary,
) -> None:
    names = [name for package in packaged.packages for name in package.triton_models]
    assert len(names) == len(set(names))
    query = packaged.packages[0]
    assert query.entry_model == "acme--embedding-query--run-1--ensemble"
    assert "acme--embedding-query--run-1--tokenizer" in query.triton_models


def test_tarball_root_is_the_model_repository(packaged: PackageSummary, tmp_path: Path) -> None:
    classifier = packaged.packages[2]
    names = tarball_names(Path(classifier.tarball))
    roots = {name.split("/")[0] for name in names}
    assert roots == set(classifier.triton_models)
    for model in classifier.triton_models:
        assert f"{model}/config.pbtxt" in names
        assert f"{model}/1" in names
    repository = extract_tarball(Path(classifier.tarball), tmp_path / "model")
    ensemble = parse_config(
        (repository / classifier.entry_model / "config.pbtxt").read_text(), "ensemble"
    )
    assert ensemble.platform == "ensemble"
    members = {step.model_name for step in ensemble.ensemble_scheduling.step}
    assert members == set(classifier.triton_models) - {classifier.entry_model}


def test_same_inputs_give_the_same_bytes(
    tiny_run: Path, packaged: PackageSummary, tmp_path: Path
) -> None:
    again = package_triton(tiny_run, load_settings(environ={}), output_dir=tmp_path)
    for first, second in zip(packaged.packages, again.packages, strict=True):
        assert first.sha256 == second.sha256
        assert Path(first.tarball).read_bytes() == Path(second.tarball).read_bytes()


def test_instances_and_batching_come_from_settings(tiny_run: Path, tmp_path: Path) -> None:
    settings = load_settings(
        environ={
            "MME_FACTORY_TRITON__INSTANCE_KIND": "KIND_GPU",
            "MME_FACTORY_TRITON__INSTANCE_COUNT": "2",
            "MME_FACTORY_TRITON__MAX_BATCH_SIZE": "32",
            "MME_FACTORY_TRITON__MAX_QUEUE_DELAY_MICROSECONDS": "500",
        }
    )
    summary = package_triton(tiny_run, settings, output_dir=tmp_path, kinds=None)
    repository = extract_tarball(Path(summary.packages[0].tarball), tmp_path / "model")
    encoder = parse_config(
        (repository / "acme--embedding-query--run-1--encoder" / "config.pbtxt").read_text(), "e"
    )
    tokenizer = parse_config(
        (repository / "acme--embedding-query--run-1--tokenizer" / "config.pbtxt").read_text(), "t"
    )
    assert encoder.platform == "pytorch_libtorch"
    assert encoder.max_batch_size == 32
    assert encoder.instance_group[0].kind == encoder.instance_group[0].KIND_GPU
    assert encoder.instance_group[0].count == 2
    assert encoder.dynamic_batching.max_queue_delay_microseconds == 500
    assert tokenizer.instance_group[0].kind == tokenizer.instance_group[0].KIND_CPU
    assert tokenizer.parameters["max_length"].string_value == "16"


def test_broken_config_is_refused_at_packaging_with_the_parse_error(
    tiny_run: Path, layouts: Path, tmp_path: Path, settings: Settings
) -> None:
    layout_file = layouts / "classifier" / "layout.yaml"
    layout = yaml.safe_load(layout_file.read_text())
    layout["models"]["classifier"]["extra_config"] = "optimization { max_queue_dealy: 5 }"
    layout_file.write_text(yaml.safe_dump(layout))
    expected = (
        r"invalid config\.pbtxt for .*--classifier: \d+:\d+ .*no field named .max_queue_dealy"
    )
    with pytest.raises(PackagingError, match=expected):
        package_triton(tiny_run, settings, output_dir=tmp_path, layouts_root=layouts)
    assert not (tmp_path / "classifier" / "model.tar.gz").exists()


def test_latest_code_version_is_used_unless_one_is_requested(
    tiny_run: Path, layouts: Path, tmp_path: Path, settings: Settings
) -> None:
    code = layouts / "autocomplete" / "code"
    shutil.copytree(code / "v2", code / "v3")
    latest = package_triton(tiny_run, settings, output_dir=tmp_path / "a", layouts_root=layouts)
    assert {p.target: p.code_version for p in latest.packages}["autocomplete"] == "v3"
    pinned = package_triton(
        tiny_run,
        settings,
        code_version="v2",
        kinds=["autocomplete"],
        output_dir=tmp_path / "b",
        layouts_root=layouts,
    )
    assert {p.code_version for p in pinned.packages} == {"v2"}
    with pytest.raises(PackagingError, match="code version 'v9' does not exist; choose from v1"):
        package_triton(
            tiny_run, settings, code_version="v9", kinds=["classifier"], output_dir=tmp_path / "c"
        )


def test_missing_export_file_is_named(tiny_run: Path, tmp_path: Path, settings: Settings) -> None:
    run = Path(shutil.copytree(tiny_run, tmp_path / "run"))
    (run / "classifier" / "labels.txt").unlink()
    with pytest.raises(PackagingError, match=r"labels.txt is missing"):
        package_triton(run, settings, output_dir=tmp_path / "out")


def test_package_command_writes_tarballs_and_a_summary(
    tiny_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [
            "package",
            "--run-dir",
            str(tiny_run),
            "--out",
            str(tmp_path),
            "--kinds",
            "classifier",
            "--json",
        ]
    )
    assert code == 0
    printed = json.loads(capsys.readouterr().out)
    assert [p["target"] for p in printed["packages"]] == ["classifier"]
    assert (tmp_path / "classifier" / "model.tar.gz").is_file()
    assert json.loads((tmp_path / "summary.json").read_text()) == printed


def test_package_command_reports_a_run_without_exports(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "run.json").write_text('{"customer": "acme", "run_id": "r"}')
    assert main(["package", "--run-dir", str(tmp_path)]) == 1
    assert "holds no exported model" in capsys.readouterr().err


def test_autocomplete_config_carries_the_prompt_format_and_stop_strings(
    packaged: PackageSummary, tmp_path: Path
) -> None:
    autocomplete = packaged.packages[3]
    repository = extract_tarball(Path(autocomplete.tarball), tmp_path / "model")
    entry = autocomplete.entry_model
    assert entry.endswith("--ensemble")

    def parameters(member: str) -> dict[str, str]:
        text = (repository / entry.replace("ensemble", member) / "config.pbtxt").read_text()
        config = parse_config(text, member)
        return {key: value.string_value for key, value in config.parameters.items()}

    text = parameters("text")
    assert text["prompt_format"] == "{context}\nAgent: {reply_start}"
    assert text["bos_token_id"] == "101" and text["max_new_tokens"] == "32"
    assert json.loads(text["stop"]) == ["\nCustomer", "\nAgent:"]
    assert text["code_version"] == "v2"
    shipped = {p.relative_to(repository).as_posix() for p in repository.rglob("*.py")}
    assert {name.split("/", 1)[1] for name in shipped} == {
        "1/model.py",
        "1/completion_text.py",
    }
    generator = repository / entry.replace("ensemble", "generator") / "1" / "model.pt"
    assert generator.is_file()
