"""Where the Triton server, its backends and the models' Python environments are.

Two environments, as in production:
- the server environment (`.triton-env`): nvidia-pytriton's `tritonserver` binary and Python
  backend, and torch for the emulated libtorch backend (the production image has a real one);
- the models' environment (`.triton-python-env`): what Python-backend models import, exactly
  the serving image's package list. The server starts with it first on PATH, so every Python
  stub runs in it and sees nothing of the server environment.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from mme_factory.errors import MmeFactoryError
from mme_factory.serving_image import image_digest
from mme_factory.settings import Settings
from mme_factory.triton.model_environment import compare_with_serving_image

LOCAL_PYTORCH_BACKEND_DIR = Path(__file__).resolve().parent / "backends" / "pytorch"
LOCAL_PYTORCH_BACKEND = LOCAL_PYTORCH_BACKEND_DIR / "model.py"
LOCAL_PYTORCH_BACKEND_FILES = ("model.py", "tensor_binding.py", "libtorch_parameters.py")
# The emulated libtorch backend reads this file, beside its model.py, to find torch.
LIBTORCH_SITE_FILE = "libtorch_site_packages.txt"
PYTHON_VERSION = "3.11"


def site_packages(env_dir: Path) -> Path:
    return env_dir / "lib" / f"python{PYTHON_VERSION}" / "site-packages"


@dataclass(frozen=True)
class TritonRuntime:
    """Where the Triton binary, its backends and the models' Python environment are."""

    env_dir: Path
    python_env_dir: Path
    python_shm_default_bytes: int = 2 * 1024**2
    python_shm_growth_bytes: int = 1024**2

    @classmethod
    def from_settings(cls, settings: Settings) -> TritonRuntime:
        return cls(
            env_dir=Path(settings.triton.env_dir).resolve(),
            python_env_dir=Path(settings.triton.python_env_dir).resolve(),
            python_shm_default_bytes=settings.triton.python_shm_default_bytes,
            python_shm_growth_bytes=settings.triton.python_shm_growth_bytes,
        )

    @property
    def python(self) -> Path:
        """The Python that runs Python-backend models."""
        return self.python_env_dir / "bin" / "python"

    @property
    def server_home(self) -> Path:
        return site_packages(self.env_dir) / "pytriton" / "tritonserver"

    @property
    def binary(self) -> Path:
        return self.server_home / "bin" / "tritonserver"

    @property
    def python_backend(self) -> Path:
        return self.server_home / "backends" / "python"

    def check(self) -> None:
        """Fail with the fix when an environment is missing or incomplete."""
        stub = self.python_backend / "triton_python_backend_stub"
        for path, what, env in (
            (self.binary, "tritonserver binary", self.env_dir),
            (stub, "Python backend stub", self.env_dir),
            (self.python, "Python of the models' environment", self.python_env_dir),
        ):
            if not path.exists():
                raise MmeFactoryError(
                    f"{what} not found at {path}: run `make setup` to build {env}"
                )
        _check_model_environment(self.python, image_digest())

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
        for name in LOCAL_PYTORCH_BACKEND_FILES:
            shutil.copyfile(LOCAL_PYTORCH_BACKEND_DIR / name, pytorch / name)
        (pytorch / LIBTORCH_SITE_FILE).write_text(f"{site_packages(self.env_dir)}\n", "utf-8")
        return directory

    def environment(self) -> dict[str, str]:
        """The server's environment: the models' env first on PATH, SageMaker MME mode on."""
        env = dict(os.environ)
        env["PATH"] = f"{self.python_env_dir / 'bin'}{os.pathsep}{env.get('PATH', '')}"
        env["VIRTUAL_ENV"] = str(self.python_env_dir)
        env["SAGEMAKER_MULTI_MODEL"] = "true"
        for leaking in ("PYTHONPATH", "PYTHONHOME", "PYTHONUSERBASE", "PYTHONSTARTUP"):
            env.pop(leaking, None)
        env["PYTHONNOUSERSITE"] = "1"
        return env


@cache
def _check_model_environment(python: Path, digest: str) -> None:
    """Once per environment and package list: the models' env is the serving image's."""
    difference = compare_with_serving_image(python)
    if not difference.empty:
        raise MmeFactoryError(
            f"{python.parent.parent} differs from the serving image's package list "
            f"({difference.describe()}): run `make setup` to rebuild it"
        )
