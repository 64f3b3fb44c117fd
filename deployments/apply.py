"""Apply `prefect.yaml`'s deployments for a target with `prefect deploy`, as a user would.

The resolved file (`<state_dir>/prefect/prefect-<target>.yaml`) holds only the deployments whose
flow files exist, with the target's work pool, steps and settings; `prefect deploy --all` runs
at the project root against PREFECT_API_URL, so entrypoints resolve as in the repository.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from deployments import declarations, work_pools
from mme_factory.errors import MmeFactoryError
from mme_factory.settings import SETTINGS_FILE_VARIABLE

DEPLOY_TIMEOUT_S = 600.0  # each flow is imported to read its parameters; torch takes a while


@dataclass(frozen=True)
class AppliedDeployments:
    target: declarations.Target
    names: list[str]
    pools: list[str]
    skipped: list[str]
    prefect_file: Path
    log_file: Path


def apply_deployments(
    target: declarations.Target,
    api_url: str,
    state_dir: Path,
    settings_path: str | None,
    environ: Mapping[str, str],
) -> AppliedDeployments:
    """Create the target's work pools if missing, then create or update its deployments."""
    settings_env = declarations.settings_environment(settings_path, environ, target)
    resolved = declarations.resolve(target, settings_env)
    if not resolved.names:
        raise MmeFactoryError(f"prefect.yaml declares no deployment whose flow exists: {resolved}")
    for pool in resolved.pools:
        if pool not in work_pools.POOLS:
            raise MmeFactoryError(
                f"prefect.yaml names work pool {pool!r}, which mme-factory "
                f"does not know; use one of {sorted(work_pools.POOLS)}"
            )
        work_pools.ensure_pool(api_url, work_pools.POOLS[pool])
    directory = state_dir / "prefect"
    prefect_file = declarations.write_prefect_file(resolved, directory)
    log_file = state_dir / "logs" / f"deploy-{target}.log"
    log_file.parent.mkdir(parents=True, exist_ok=True)
    command = [
        str(Path(sys.executable).with_name("prefect")),
        "--no-prompt",
        "deploy",
        "--all",
        "--prefect-file",
        str(prefect_file),
    ]
    env = {**os.environ, **environ, "PREFECT_API_URL": api_url}
    if settings_path:  # for the build steps, which read the settings here, not in the image
        env[SETTINGS_FILE_VARIABLE] = str(Path(settings_path).resolve())
    with log_file.open("wb") as log:
        try:
            finished = subprocess.run(
                command,
                cwd=declarations.PROJECT_ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                timeout=DEPLOY_TIMEOUT_S,
                check=False,
            )
        except subprocess.TimeoutExpired as error:
            raise MmeFactoryError(
                f"prefect deploy did not finish within {DEPLOY_TIMEOUT_S:.0f} s; see {log_file}"
            ) from error
    if finished.returncode != 0:
        raise MmeFactoryError(
            f"prefect deploy of {prefect_file} failed ({finished.returncode}); see {log_file}"
        )
    return AppliedDeployments(
        target, resolved.names, resolved.pools, resolved.skipped, prefect_file, log_file
    )
