"""The deployments `prefect.yaml` declares, resolved for one target.

Each entry's own `work_pool` is the local target (what `prefect deploy --all` reads); its
`production` part (work pool, build and pull steps) replaces those fields for the production
target. Both targets also get the settings the deploying command runs with, as the `env` job
variable, so that flow runs on any worker of the pool read the same settings. An entry whose
flow file is missing is left out and named.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from mme_factory.errors import MmeFactoryError
from mme_factory.settings import ENV_PREFIX, SETTINGS_FILE_VARIABLE

PROJECT_ROOT = Path(__file__).resolve().parent.parent
PREFECT_FILE = PROJECT_ROOT / "prefect.yaml"
IMAGE_WORKDIR = Path("/opt/mme-factory")  # where the pipeline image holds the project
Target = Literal["local", "production"]
TARGETS: tuple[Target, ...] = ("local", "production")
PRODUCTION_FIELDS = ("work_pool", "build", "push", "pull")


@dataclass(frozen=True)
class ResolvedDeployments:
    target: Target
    document: dict[str, Any]  # a prefect.yaml for this target alone
    skipped: list[str] = field(default_factory=list)  # why each left-out entry was left out

    @property
    def names(self) -> list[str]:
        return [entry["name"] for entry in self.document["deployments"]]

    @property
    def pools(self) -> list[str]:
        return sorted({entry["work_pool"]["name"] for entry in self.document["deployments"]})


def read_prefect_file(path: Path = PREFECT_FILE) -> dict[str, Any]:
    document = yaml.safe_load(path.read_text())
    if not isinstance(document, dict) or not isinstance(document.get("deployments"), list):
        raise MmeFactoryError(f"{path} has no `deployments` list; see Prefect's prefect.yaml")
    return document


def settings_environment(
    settings_path: str | None, environ: Mapping[str, str], target: Target
) -> dict[str, str]:
    """The settings file (as flow runs of the target see it) and every MME_FACTORY_ override."""
    env = {
        name: value
        for name, value in environ.items()
        if name.startswith(ENV_PREFIX) and name != SETTINGS_FILE_VARIABLE
    }
    path = settings_path or environ.get(SETTINGS_FILE_VARIABLE)
    if path:
        env[SETTINGS_FILE_VARIABLE] = _settings_file_for(Path(path).resolve(), target)
    return env


def _settings_file_for(path: Path, target: Target) -> str:
    if target == "local":
        return str(path)
    if not path.is_relative_to(PROJECT_ROOT):
        raise MmeFactoryError(
            f"{path} is outside the repository, so the pipeline image does not carry it; "
            "put the production settings under config/ and rebuild the image"
        )
    return str(IMAGE_WORKDIR / path.relative_to(PROJECT_ROOT))


def resolve(
    target: Target,
    env: Mapping[str, str],
    document: dict[str, Any] | None = None,
    project_root: Path = PROJECT_ROOT,
) -> ResolvedDeployments:
    document = read_prefect_file() if document is None else document
    deployments, skipped = [], []
    for entry in document["deployments"]:
        name = entry.get("name", "?")
        entrypoint = str(entry.get("entrypoint", ""))
        flow_file = entrypoint.rpartition(":")[0]
        if not flow_file or not (project_root / flow_file).is_file():
            skipped.append(f"{name}: {flow_file or 'no entrypoint'} does not exist")
            continue
        deployments.append(_for_target(entry, target, env, project_root))
    resolved = {
        key: value for key, value in document.items() if key not in ("definitions", "deployments")
    }
    resolved["deployments"] = deployments
    return ResolvedDeployments(target, resolved, skipped)


def _for_target(
    entry: dict[str, Any], target: Target, env: Mapping[str, str], project_root: Path
) -> dict[str, Any]:
    production = entry.get("production") or {}
    resolved = {key: value for key, value in entry.items() if key != "production"}
    if target == "production":
        if "work_pool" not in production:
            raise MmeFactoryError(
                f"deployment {entry['name']!r} in prefect.yaml has no production.work_pool"
            )
        resolved |= {key: production[key] for key in PRODUCTION_FIELDS if key in production}
    else:
        # What `prefect deploy` records by default when run at the project root, said outright.
        resolved["pull"] = [
            {"prefect.deployments.steps.set_working_directory": {"directory": str(project_root)}}
        ]
    work_pool = dict(resolved.get("work_pool") or {})
    job_variables = dict(work_pool.get("job_variables") or {})
    job_variables["env"] = {**job_variables.get("env", {}), **env}
    work_pool["job_variables"] = job_variables
    resolved["work_pool"] = work_pool
    return resolved


def write_prefect_file(resolved: ResolvedDeployments, directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"prefect-{resolved.target}.yaml"
    path.write_text(
        "# Written by mme-factory from the repository's prefect.yaml; edit that one.\n"
        + yaml.safe_dump(resolved.document, sort_keys=False)
    )
    return path
