"""Where the Triton server, its backends and the models' Python environment are.

The runtime environment (`.triton-env`) holds nvidia-pytriton's `tritonserver` binary and
Python backend; the models run in that environment's Python, as in the Triton container.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from mme_factory.errors import MmeFactoryError
from mme_factory.settings import Settings

LOCAL_PYTORCH_BACKEND = Path(__file__).resolve().parent / "backends" / "pytorch" / "model.py"
PYTHON_VERSION = "3.11"


@dataclass(frozen=True)
class TritonRuntime:
    """Where the Triton binary, its backends and the models' Python environment are."""

    env_dir: Path

    @classmethod
    def from_settings(cls, settings: Settings) -> TritonRuntime:
        return cls(env_dir=Path(settings.triton.env_dir).resolve())

    @property
    def python(self) -> Path:
        return self.env_dir / "bin" / "python"

    @property
    def server_home(self) -> Path:
        site = self.env_dir / "lib" / f"python{PYTHON_VERSION}" / "site-packages"
        return site / "pytriton" / "tritonserver"

    @property
    def binary(self) -> Path:
        return self.server_home / "bin" / "tritonserver"

    @property
    def python_backend(self) -> Path:
        return self.server_home / "backends" / "python"

    def check(self) -> None:
        """Fail with the fix when the runtime environment is missing or incomplete."""
        stub = self.python_backend / "triton_python_backend_stub"
        for path, what in ((self.binary, "tritonserver binary"), (stub, "Python backend stub")):
            if not path.exists():
                raise MmeFactoryError(
                    f"{what} not found at {path}: run `make setup` to build {self.env_dir}"
                )

    def prepare_backends(self, directory: Path) -> Path:
        """A backend directory: the wheel's Python backend plus the local `pytorch` backend.

        `python` must be a symlink, not a copy: the stub finds its bundled libraries relative
        to the real location of the backend.
        """
        directory.mkdir(parents=True, exist_ok=True)
        python_link = directory / "python"
        stale = python_link.resolve() != self.python_backend.resolve()
        if (python_link.is_symlink() or python_link.exists()) and stale:
            python_link.unlink()
        if not python_link.exists():
            python_link.symlink_to(self.python_backend, target_is_directory=True)
        pytorch = directory / "pytorch"
        pytorch.mkdir(exist_ok=True)
        shutil.copyfile(LOCAL_PYTORCH_BACKEND, pytorch / "model.py")
        return directory

    def environment(self) -> dict[str, str]:
        """The server's environment: the runtime env first on PATH, SageMaker MME mode on."""
        env = dict(os.environ)
        env["PATH"] = f"{self.env_dir / 'bin'}{os.pathsep}{env.get('PATH', '')}"
        env["VIRTUAL_ENV"] = str(self.env_dir)
        env["SAGEMAKER_MULTI_MODEL"] = "true"
        env.pop("PYTHONPATH", None)
        env.pop("PYTHONHOME", None)
        return env
