"""The local stack as the end-to-end tests use it: settings for tiny models, the mme_local
process, and the sample customer cut small so that tiny models train in seconds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from test_support.mme_local_harness import ServiceProcess
from test_support.tiny_base_models import tiny_training_environ, write_tiny_encoder

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "customers" / "acme"
EXAMPLES_PER_INTENT = 24


def tiny_stack(
    root: Path, env: str, extra: dict[str, str] | None = None
) -> tuple[dict[str, str], ServiceProcess]:
    """The environment of a stack under `root` and its (not yet started) mme_local process."""
    encoder = write_tiny_encoder(root / "encoder")
    environ = {
        "MME_FACTORY_STATE_DIR": str(root / "state"),
        "MME_FACTORY_STORE": str(root / "store"),
        "MME_FACTORY_ENV": env,
        "MME_FACTORY_SAGEMAKER__WAIT_DELAY_S": "1",
        **tiny_training_environ(encoder),
        **(extra or {}),
    }
    service = ServiceProcess(environ, root / "mme_local.log")
    environ |= {
        "MME_FACTORY_ENDPOINTS__SAGEMAKER_ENDPOINT_URL": service.url,
        "MME_FACTORY_ENDPOINTS__SAGEMAKER_RUNTIME_ENDPOINT_URL": service.url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }
    return environ, service


def small_customer(
    directory: Path, replies: int = 0, per_intent: int = EXAMPLES_PER_INTENT
) -> Path:
    """The sample customer with `per_intent` texts per intent and its first `replies` replies."""
    directory.mkdir(parents=True, exist_ok=True)
    intents = pd.read_csv(EXAMPLES / "intents.csv", dtype=str)
    intents.groupby("intent").head(per_intent).to_csv(directory / "intents.csv", index=False)
    for name in ("articles.jsonl", "pairs.csv"):
        (directory / name).write_bytes((EXAMPLES / name).read_bytes())
    if replies:
        lines = (EXAMPLES / "replies.jsonl").read_text(encoding="utf-8").splitlines(True)
        (directory / "replies.jsonl").write_text("".join(lines[:replies]), encoding="utf-8")
    return directory


def shuffled_intents(data: Path, target: Path, seed: int = 7) -> Path:
    """A copy of a customer's data with its intents shuffled across its texts: a training set
    broken the way a bad export or a mislabelling job breaks one."""
    target.mkdir(parents=True)
    for path in data.iterdir():
        (target / path.name).write_bytes(path.read_bytes())
    intents = pd.read_csv(data / "intents.csv", dtype=str)
    intents["intent"] = np.random.default_rng(seed).permutation(intents["intent"].to_numpy())
    intents.to_csv(target / "intents.csv", index=False)
    return target
