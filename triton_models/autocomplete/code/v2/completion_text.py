"""Text around the autocomplete generator: the prompt it continues and the completion it gave.

Imports only the standard library and numpy, so the Python steps ship it beside them and the
pipeline's reference decoder uses the same functions.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

NO_TOKEN = -1  # the generator's token after a row's end
FINISH_REASONS = ("length", "eos", "empty_prompt")  # by the generator's `finish` code


def build_prompt(prompt_format: str, context: str, reply_start: str = "") -> str:
    """The text the model continues, as training built it.

    `prompt_format` comes from export.json (e.g. "{context}\\nAgent: {reply_start}"); the
    context loses trailing whitespace, and without a reply start so does the whole prompt.
    """
    prompt = prompt_format.format(context=context.rstrip(), reply_start=reply_start.strip())
    return prompt if reply_start.strip() else prompt.rstrip()


def prompt_ids(
    encoded: Sequence[int], max_length: int, room: int, bos_token_id: int | None
) -> list[int]:
    """The prompt's last `max_length` tokens that leave `room` positions for the new ones; an
    empty prompt starts from the beginning-of-sequence token when the model has one."""
    kept = list(encoded)[-max_length:][-max(room, 1) :]
    return kept or ([] if bos_token_id is None else [bos_token_id])


def left_padded(
    rows: Sequence[Sequence[int]], pad_id: int, multiple: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """ids and attention mask [rows, width], right-aligned; the width is rounded up to
    `multiple` so that requests of similar lengths have the same shape and batch together."""
    longest = max((len(row) for row in rows), default=0)
    width = max(1, -(-longest // multiple) * multiple)
    ids = np.full((len(rows), width), pad_id, dtype=np.int64)
    mask = np.zeros((len(rows), width), dtype=np.int64)
    for index, row in enumerate(rows):
        if row:
            ids[index, width - len(row) :] = row
            mask[index, width - len(row) :] = 1
    return ids, mask


def completion(
    decode: Callable[[list[int]], str], token_ids: Sequence[int], finish: int, stop: Sequence[str]
) -> tuple[str, str]:
    """(text, finish reason) of one row of generated tokens.

    The text is cut before the first stop string as soon as one appears while the tokens are
    read one by one (so "stop" wins over a later end token), exactly as a decoder that checks
    after each token and stops there.
    """
    tokens = [int(token) for token in token_ids if token != NO_TOKEN]
    if stop:
        for count in range(1, len(tokens) + 1):
            text = decode(tokens[:count])
            cut = first_stop(text, stop)
            if cut is not None:
                return text[:cut], "stop"
    return decode(tokens), FINISH_REASONS[finish]


def first_stop(text: str, stop: Sequence[str]) -> int | None:
    found = [text.find(item) for item in stop if item and item in text]
    return min(found) if found else None
