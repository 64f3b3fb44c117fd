"""Package a run's exported models as Triton model repositories in reproducible `model.tar.gz`.

    RUN/package/
      summary.json                     every tarball: Triton names, sha256, code version
      embedding-query/model.tar.gz     root = the Triton model repository of one TargetModel:
      embedding-article/model.tar.gz     <customer>--<target>--<version>--ensemble/config.pbtxt
      classifier/model.tar.gz            <customer>--<target>--<version>--tokenizer/...
      autocomplete/model.tar.gz          ...

SageMaker's Triton container extracts a TargetModel to `<models>/<hash>/model/` and loads the
model whose config says `platform: "ensemble"` with the others as its members.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from prefect import task
from prefect.artifacts import create_markdown_artifact

from mme_factory.model_kinds import ModelKind, describe
from mme_factory.records import (
    EmbeddingExport,
    ExportRecord,
    JsonFile,
    RunRecord,
    TrainingStatus,
    UnreadableRecord,
)
from mme_factory.settings import Settings
from tasks.packaging.endpoint_checks import check_for_endpoint
from tasks.packaging.model_tarball import write_tarball
from tasks.packaging.triton_config import PackagingError, render_config
from tasks.packaging.triton_layout import (
    SHARED_DIR,
    TRITON_MODELS,
    Batching,
    KindLayout,
    model_specs,
    read_layout,
    triton_model_name,
)

Record = TypeVar("Record", bound=JsonFile)

PACKAGE_DIR = "package"
TARBALL = "model.tar.gz"
SUMMARY = "summary.json"


@dataclass(frozen=True)
class PackagedModel:
    customer: str
    kind: str
    role: str | None
    target: str  # embedding-query, classifier, ... (the TargetModel key's middle part)
    version: str
    entry_model: str  # the Triton model SageMaker invokes (the ensemble, or the only model)
    triton_models: list[str]
    code_version: str
    tarball: str
    sha256: str
    size_bytes: int


@dataclass
class PackageSummary:
    run_dir: str
    customer: str
    run_id: str
    version: str
    packages: list[PackagedModel] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_markdown(self) -> str:
        rows = [
            f"| {p.target} | `{p.entry_model}` | {p.code_version} | {p.size_bytes / 1e6:.1f} MB "
            f"| `{p.sha256[:12]}` |"
            for p in self.packages
        ]
        header = (
            "| target | Triton entry model | code | size | sha256 |\n"
            "| --- | --- | --- | --- | --- |"
        )
        return f"# Triton packages for {self.customer} ({self.version})\n\n{header}\n" + "\n".join(
            rows
        )


def batching_from(settings: Settings) -> Batching:
    triton = settings.triton
    return Batching(
        max_batch_size=triton.max_batch_size,
        instance_kind=triton.instance_kind,
        instance_count=triton.instance_count,
        max_queue_delay_microseconds=triton.max_queue_delay_microseconds,
    )


def read_record(record: type[Record], directory: Path) -> Record:
    """A record a run directory holds; PackagingError names the file when it cannot be read."""
    path = record.path_in(directory)
    try:
        return record.read(directory)
    except FileNotFoundError:
        raise PackagingError(f"{path} is missing") from None
    except OSError as error:
        raise PackagingError(f"cannot read {path}: {error}") from None
    except UnreadableRecord as error:
        raise PackagingError(f"cannot read {error}") from None


@dataclass(frozen=True)
class TritonRepository:
    """One TargetModel's Triton model repository, as archive entries."""

    target: str
    role: str | None
    names: dict[str, str]  # layout member -> Triton model name
    entries: dict[str, Path | bytes]  # archive path -> source file or content
    version_dirs: list[str]  # `<model>/1`, present even when empty (the ensemble's)


def read_export(export_dir: Path, layout: KindLayout) -> ExportRecord:
    export = read_record(ExportRecord, export_dir)
    if export.kind != layout.kind:
        raise PackagingError(f"{export_dir}/export.json: kind {export.kind!r}, not {layout.kind!r}")
    return export


def build_repository(
    layout: KindLayout,
    export_dir: Path,
    customer: str,
    version: str,
    batching: Batching,
    code_version: str,
) -> TritonRepository:
    """Every file of one exported model's Triton repository, checked as the endpoint would."""
    export = read_export(export_dir, layout)
    role = export.role if isinstance(export, EmbeddingExport) else None
    target = f"{layout.kind}-{role}" if role else layout.kind
    names = {
        member: triton_model_name(customer, target, version, member) for member in layout.models
    }
    specs = model_specs(layout, names, export.to_dict(), batching, code_version)
    code_dir = layout.code_root / code_version
    entries: dict[str, Path | bytes] = {}
    for member, spec in specs.items():
        entries[f"{spec.name}/config.pbtxt"] = render_config(spec).encode("utf-8")
        for destination, source in (layout.models[member].get("files") or {}).items():
            entries[f"{spec.name}/{_inside(destination, layout)}"] = _source(
                str(source), export_dir, code_dir, layout
            )
    check_for_endpoint(list(specs.values()), entries)
    version_dirs = [f"{name}/1" for name in names.values()]
    return TritonRepository(target, role, names, entries, version_dirs)


def package_export(
    export_dir: Path,
    layout: KindLayout,
    customer: str,
    version: str,
    settings: Settings,
    output_dir: Path,
    code_version: str | None = None,
) -> PackagedModel:
    """Render, validate and pack one exported model (one TargetModel) into a tarball."""
    chosen = layout.resolve_code_version(code_version)
    repository = build_repository(
        layout, export_dir, customer, version, batching_from(settings), chosen
    )
    tarball = output_dir / repository.target / TARBALL
    digest = write_tarball(repository.entries, tarball, repository.version_dirs)
    return PackagedModel(
        customer=customer,
        kind=layout.kind,
        role=repository.role,
        target=repository.target,
        version=version,
        entry_model=repository.names[layout.entry],
        triton_models=sorted(repository.names.values()),
        code_version=chosen,
        tarball=str(tarball),
        sha256=digest,
        size_bytes=tarball.stat().st_size,
    )


def export_dirs(run_dir: Path, layout: KindLayout) -> list[Path]:
    """The exported models of one kind in a run: one per role, or the kind's directory."""
    base = run_dir / layout.kind
    roles = describe(layout.kind).roles
    candidates = [base / role for role in roles] if roles else [base]
    return [path for path in candidates if ExportRecord.path_in(path).is_file()]


def package_triton(
    run_dir: Path,
    settings: Settings,
    code_version: str | None = None,
    version: str | None = None,
    output_dir: Path | None = None,
    kinds: list[ModelKind] | None = None,
    layouts_root: Path = TRITON_MODELS,
) -> PackageSummary:
    """Package every exported model of a run; writes the tarballs and `summary.json`.

    `version` names the Triton models (default: the run id); `code_version` picks the
    Python-backend code (default: each kind's latest).
    """
    run = read_record(RunRecord, run_dir)
    customer, run_id = run.customer, run.run_id
    if not customer or not run_id:
        raise PackagingError(f"{run_dir}/run.json must name the customer and run_id")
    output_dir = output_dir or run_dir / PACKAGE_DIR
    summary = PackageSummary(str(run_dir), customer, run_id, version or run_id)
    for kind in kinds or list(ModelKind):
        outcome = run.kinds.get(str(kind))
        if outcome is not None and outcome.status != TrainingStatus.EXPORTED:
            continue  # rejected, failed, or stopped mid-export: never packaged
        layout = read_layout(describe(kind).layout, layouts_root)
        for export_dir in export_dirs(run_dir, layout):
            summary.packages.append(
                package_export(
                    export_dir,
                    layout,
                    customer,
                    summary.version,
                    settings,
                    output_dir,
                    code_version,
                )
            )
    if not summary.packages:
        raise PackagingError(f"{run_dir} holds no exported model (no <kind>/export.json)")
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / SUMMARY).write_text(json.dumps(summary.to_dict(), indent=2) + "\n", "utf-8")
    return summary


@task(name="package-triton")
def package_triton_task(
    run_dir: Path, settings: Settings, code_version: str | None = None, version: str | None = None
) -> PackageSummary:
    """Package a run's exported models as Triton repositories and attach the table."""
    summary = package_triton(run_dir, settings, code_version, version)
    create_markdown_artifact(summary.to_markdown(), key="triton-packages")
    return summary


def _inside(destination: str, layout: KindLayout) -> str:
    parts = Path(destination).parts
    if Path(destination).is_absolute() or ".." in parts or not parts:
        raise PackagingError(f"{layout.kind} layout: file path {destination!r} leaves the model")
    return "/".join(parts)


def _source(source: str, export_dir: Path, code_dir: Path, layout: KindLayout) -> Path:
    origin, _, name = source.partition(":")
    shared_dir = layout.directory.parent / SHARED_DIR / "code" / code_dir.name
    roots = {"export": export_dir, "code": code_dir, "shared": shared_dir}
    if origin not in roots or not name:
        raise PackagingError(
            f"{layout.kind} layout: source {source!r} is not export:NAME, code:NAME or shared:NAME"
        )
    path = roots[origin] / name
    if not path.is_file():
        raise PackagingError(f"{path} is missing (needed by the {layout.kind} layout)")
    return path
