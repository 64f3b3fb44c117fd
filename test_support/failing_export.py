"""Settings under which a tiny autocomplete model trains, passes its gate, and fails export.

The served decoder computes attention its own way (a key/value cache, one step at a time), so
its logits differ from the trained model's by float rounding: no real export, float32 or
float16, meets a parity tolerance of 1e-12, and the failure is the pipeline's own
`ExportParityError`.
"""

from __future__ import annotations

from pathlib import Path

from test_support.tiny_base_models import tiny_training_environ

UNREACHABLE_PARITY = "1e-12"
REPLIES = 200  # with the steps below, enough for the tiny decoder to beat its unigram baseline


def failing_export_environ(encoder: Path) -> dict[str, str]:
    """Settings overrides (environment form) for tiny training with an unreachable parity."""
    prefix = "MME_FACTORY_TRAINING__"
    return {
        **tiny_training_environ(encoder),
        prefix + "AUTOCOMPLETE__EPOCHS": "6",
        prefix + "AUTOCOMPLETE__BATCH_SIZE": "4",
        prefix + "AUTOCOMPLETE__LEARNING_RATE": "0.01",
        prefix + "EXPORT_PARITY_TOLERANCE": UNREACHABLE_PARITY,
        prefix + "EXPORT_PARITY_TOLERANCE_FP16": UNREACHABLE_PARITY,  # "auto" on a GPU endpoint
        prefix + "EXPORT_PARITY_TOLERANCE_FP16_LOGITS": UNREACHABLE_PARITY,
    }


def keep_first_replies(data: Path, count: int = REPLIES) -> Path:
    """Cut a customer's replies.jsonl to its first `count` lines, in place."""
    replies = (data / "replies.jsonl").read_text(encoding="utf-8").splitlines(True)
    (data / "replies.jsonl").write_text("".join(replies[:count]), encoding="utf-8")
    return data
