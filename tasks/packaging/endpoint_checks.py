"""Everything the endpoint would refuse, checked on a TargetModel's files before they are packed.

Four checks, each in its own module: the SageMaker layout (one entry model and its steps, no
BLS), the imports of Python-backend code (only what the serving image provides), the tensor
names of libtorch models (as the real backend binds them) and their graphs (no fixed device, so
that they run where the backend puts them, `cuda:0` on a GPU endpoint).
"""

from __future__ import annotations

from pathlib import Path

from tasks.packaging.device_free_graph import check_device_free
from tasks.packaging.libtorch_tensors import check_libtorch_tensors
from tasks.packaging.python_imports import check_python_imports
from tasks.packaging.sagemaker_layout import check_sagemaker_layout
from tasks.packaging.triton_config import PackagingError, TritonModelSpec

LIBTORCH = "pytorch_libtorch"
LIBTORCH_FILE = "1/model.pt"


def check_for_endpoint(specs: list[TritonModelSpec], entries: dict[str, Path | bytes]) -> None:
    """Raise a PackagingError naming the first thing the serving endpoint would refuse."""
    python_sources = {
        spec.name: _files(entries, spec.name, ".py") for spec in specs if spec.backend == "python"
    }
    check_sagemaker_layout(specs, python_sources)
    for model, sources in sorted(python_sources.items()):
        check_python_imports(model, sources)
    for spec in specs:
        if spec.platform == LIBTORCH:
            model_pt = entries.get(f"{spec.name}/{LIBTORCH_FILE}")
            if model_pt is None:
                raise PackagingError(f"model {spec.name}: {LIBTORCH_FILE} is missing")
            check_libtorch_tensors(spec, model_pt)
            source = f" ({model_pt})" if isinstance(model_pt, Path) else ""
            check_device_free(spec.name, f"{spec.name}/{LIBTORCH_FILE}{source}", model_pt)


def _files(entries: dict[str, Path | bytes], model: str, suffix: str) -> dict[str, bytes]:
    prefix = f"{model}/"
    return {
        path: source.read_bytes() if isinstance(source, Path) else source
        for path, source in entries.items()
        if path.startswith(prefix) and path.endswith(suffix)
    }
