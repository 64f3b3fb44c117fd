"""Refuse a Python-backend model that imports what the serving image does not provide.

Every `.py` file a Python-backend model ships is parsed, and each imported top-level module
must be the standard library, the backend's own `triton_python_backend_utils`, a module the
model ships beside it, or a package pinned in the serving image's lists. A package that is in
the image only as a dependency of another is refused too: nothing pins its version.
"""

from __future__ import annotations

import ast
import importlib.metadata
import sys
from dataclasses import dataclass
from functools import cache
from pathlib import PurePosixPath

from packaging.utils import canonicalize_name

from mme_factory.serving_image import REQUIREMENTS, serving_packages
from tasks.packaging.triton_config import PackagingError

BACKEND_MODULES = frozenset({"triton_python_backend_utils", "c_python_backend_utils"})
TORCH_MODULES = frozenset({"torch", "torchvision", "torchaudio"})
# Standard-library modules the image's Python 3.10 does not have yet.
NEWER_THAN_IMAGE_PYTHON = frozenset({"tomllib", "_tokenize", "_typing"})


@dataclass(frozen=True)
class ImportedModule:
    module: str  # top level: "tokenizers"
    file: str  # archive path of the file importing it
    line: int


def parse_python(source: bytes, file: str) -> ast.Module:
    try:
        return ast.parse(source, filename=file)
    except SyntaxError as error:
        raise PackagingError(f"{file}: not valid Python: {error}") from None


def imported_modules(source: bytes, file: str) -> list[ImportedModule]:
    """Top-level modules a file imports (anywhere in it); relative imports are its own."""
    tree = parse_python(source, file)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        found += [ImportedModule(name.split(".")[0], file, node.lineno) for name in names]
    return found


@cache
def serving_image_modules() -> dict[str, str]:
    """Importable top-level module -> the serving image package providing it."""
    pinned = {package.name for package in serving_packages()}
    modules = {name.replace("-", "_"): name for name in pinned}
    for module, distributions in importlib.metadata.packages_distributions().items():
        for distribution in distributions:
            canonical = canonicalize_name(distribution)
            if canonical in pinned:
                modules[module] = canonical
    return modules


def stdlib_modules() -> frozenset[str]:
    return frozenset(sys.stdlib_module_names) - NEWER_THAN_IMAGE_PYTHON


def check_python_imports(model: str, files: dict[str, bytes]) -> None:
    """Raise naming each import the serving image cannot satisfy; `files`: path -> source."""
    shipped = {PurePosixPath(path).stem for path in files}
    allowed = stdlib_modules() | BACKEND_MODULES | shipped | set(serving_image_modules())
    missing = [
        found
        for path, source in sorted(files.items())
        for found in imported_modules(source, path)
        if found.module not in allowed
    ]
    if missing:
        listed = "; ".join(f"{m.module} ({m.file}, line {m.line})" for m in missing)
        provided = ", ".join(sorted({p.name for p in serving_packages()}))
        torch_hint = (
            " torch is left out on purpose: networks run as TorchScript on the PyTorch backend "
            "(pytorch_libtorch) inside tritonserver, which shares one CUDA context, while a "
            "Python step that imports torch creates its own on a GPU endpoint."
            if any(m.module in TORCH_MODULES for m in missing)
            else ""
        )
        raise PackagingError(
            f"model {model} imports what the serving image does not provide: {listed}. "
            f"The image has the standard library and {provided}; pin the package in "
            f"{REQUIREMENTS} (and rebuild the image and `make setup`) or drop the import."
            f"{torch_hint}"
        )
