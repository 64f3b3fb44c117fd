"""The pure-torch Llama decoder matches transformers' LlamaForCausalLM."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from transformers import LlamaForCausalLM

from tasks.training.autocomplete.llama_decoder import LlamaDecoder
from test_support.tiny_base_models import write_tiny_llama
from triton_models.autocomplete.code.v2.completion_text import build_prompt

TOLERANCE = 1e-4


def tiny_llama(path: Path, tie: bool = True) -> LlamaForCausalLM:
    return write_tiny_llama(
        path,
        7,
        vocab_size=97,
        max_position_embeddings=64,
        tie_word_embeddings=tie,
        rope_theta=10_000.0,
    )


@pytest.mark.parametrize("tie", [True, False])
def test_logits_match_transformers_without_cache(tmp_path: Path, tie: bool) -> None:
    reference = tiny_llama(tmp_path, tie)
    decoder = LlamaDecoder.from_files(tmp_path / "config.json", tmp_path / "weights.pt")
    ids = torch.randint(0, 97, (3, 11))
    with torch.inference_mode():
        expected = reference(input_ids=ids).logits
        logits, cache = decoder(ids)
    assert len(cache) == 2
    torch.testing.assert_close(logits, expected, atol=TOLERANCE, rtol=0)


def test_logits_match_transformers_with_cache(tmp_path: Path) -> None:
    reference = tiny_llama(tmp_path)
    decoder = LlamaDecoder.from_files(tmp_path / "config.json", tmp_path / "weights.pt")
    ids = torch.randint(0, 97, (2, 9))
    with torch.inference_mode():
        expected = reference(input_ids=ids).logits
        first, cache = decoder(ids[:, :6])
        steps = [first]
        for position in range(6, 9):
            logits, cache = decoder(ids[:, position : position + 1], cache)
            steps.append(logits)
    torch.testing.assert_close(torch.cat(steps, dim=1), expected, atol=TOLERANCE, rtol=0)


def test_greedy_generation_matches_transformers(tmp_path: Path) -> None:
    reference = tiny_llama(tmp_path)
    decoder = LlamaDecoder.from_files(tmp_path / "config.json", tmp_path / "weights.pt")
    prompt = [5, 17, 42, 8]
    expected = reference.generate(
        torch.tensor([prompt]),
        max_new_tokens=10,
        do_sample=False,
        eos_token_id=None,
        pad_token_id=0,
    )[0, len(prompt) :].tolist()
    generated = decoder.generate(prompt, max_new_tokens=10)
    assert generated.token_ids == expected
    assert generated.finish_reason == "length"


def test_generation_honours_eos_stop_strings_and_time_limit(tmp_path: Path) -> None:
    tiny_llama(tmp_path)
    decoder = LlamaDecoder.from_files(tmp_path / "config.json", tmp_path / "weights.pt")
    free = decoder.generate([1, 2, 3], max_new_tokens=6)
    assert len(free.token_ids) == 6

    at_eos = decoder.generate([1, 2, 3], max_new_tokens=6, eos_token_id=free.token_ids[2])
    assert at_eos.finish_reason == "eos"
    assert at_eos.token_ids == free.token_ids[: free.token_ids.index(free.token_ids[2])]

    def decode(ids: list[int]) -> str:
        return " ".join(f"t{token}" for token in ids)

    stop = f"t{free.token_ids[1]}"
    stopped = decoder.generate([1, 2, 3], max_new_tokens=6, stop=[stop], decode=decode)
    assert stopped.finish_reason == "stop"
    assert stop not in (stopped.text or "")

    timed = decoder.generate([1, 2, 3], max_new_tokens=6, time_limit_s=0.0)
    assert timed.finish_reason == "time"
    assert timed.token_ids == []


def test_prompt_is_built_as_in_training() -> None:
    prompt_format = "{context}\nAgent: {reply_start}"
    assert build_prompt(prompt_format, "Customer: hi \n") == "Customer: hi\nAgent:"
    assert build_prompt(prompt_format, "Customer: hi", " Sure ") == "Customer: hi\nAgent: Sure"
    assert build_prompt("{context}", "") == ""


def test_empty_prompt_starts_from_the_bos_token(tmp_path: Path) -> None:
    tiny_llama(tmp_path)
    decoder = LlamaDecoder.from_files(tmp_path / "config.json", tmp_path / "weights.pt")
    assert decoder.shape.bos_token_id == 1
    assert len(decoder.generate([], max_new_tokens=3).token_ids) == 3
