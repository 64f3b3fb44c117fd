"""The Python steps' text handling around the generator, against the reference decoder's."""

from __future__ import annotations

import numpy as np

from triton_models.autocomplete.code.v2.completion_text import (
    build_prompt,
    completion,
    left_padded,
    prompt_ids,
)

WORDS = {1: "Sure", 2: ",", 3: " I", 4: " can", 5: "\nCustomer", 6: " help"}


def decode(ids: list[int]) -> str:
    return "".join(WORDS[token] for token in ids)


def test_the_first_stop_string_cuts_the_text_even_when_an_end_token_follows() -> None:
    assert completion(decode, [1, 2, 3, 5, 6, -1], 1, ["\nCustomer"]) == ("Sure, I", "stop")


def test_without_a_stop_string_the_generators_reason_is_kept() -> None:
    assert completion(decode, [1, 3, 4, -1, -1], 1, ["\nCustomer"]) == ("Sure I can", "eos")
    assert completion(decode, [1, 3, 4], 0, []) == ("Sure I can", "length")
    assert completion(decode, [-1], 2, ["x"]) == ("", "empty_prompt")


def test_a_stop_string_spanning_two_tokens_is_found_when_it_completes() -> None:
    words = {1: "ok\nCus", 2: "tomer then", 3: "!"}
    text, reason = completion(
        lambda ids: "".join(words[i] for i in ids), [1, 2, 3], 0, ["\nCustomer"]
    )
    assert (text, reason) == ("ok", "stop")


def test_prompt_keeps_its_last_tokens_and_leaves_room_for_new_ones() -> None:
    assert prompt_ids(range(10), max_length=6, room=100, bos_token_id=None) == [4, 5, 6, 7, 8, 9]
    assert prompt_ids(range(10), max_length=6, room=3, bos_token_id=None) == [7, 8, 9]
    assert prompt_ids([], max_length=6, room=3, bos_token_id=7) == [7]
    assert prompt_ids([], max_length=6, room=3, bos_token_id=None) == []


def test_left_padding_rounds_the_width_up_and_right_aligns_rows() -> None:
    ids, mask = left_padded([[5, 6, 7], [9], []], pad_id=0, multiple=4)
    assert ids.shape == mask.shape == (3, 4)
    np.testing.assert_array_equal(ids, [[0, 5, 6, 7], [0, 0, 0, 9], [0, 0, 0, 0]])
    np.testing.assert_array_equal(mask.sum(axis=1), [3, 1, 0])
    assert ids.dtype == mask.dtype == np.int64


def test_prompt_is_built_as_in_training() -> None:
    prompt_format = "{context}\nAgent: {reply_start}"
    assert build_prompt(prompt_format, "Customer: hi \n") == "Customer: hi\nAgent:"
    assert build_prompt(prompt_format, "Customer: hi", " Sure ") == "Customer: hi\nAgent: Sure"
