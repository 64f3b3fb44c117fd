"""A Llama-architecture causal LM in plain torch, with a key/value cache and greedy generation.

The Triton runtime environment has no transformers, so the autocomplete model runs this file.
It reads the files the export step writes (`config.json` = Hugging Face LlamaConfig dict,
`weights.pt` = LlamaForCausalLM state_dict) and matches `LlamaForCausalLM` numerically.
Imports only torch and the standard library, so it loads in both environments.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional

KeyValueCache = list[tuple[Tensor, Tensor]]


@dataclass(frozen=True)
class LlamaShape:
    vocab_size: int
    hidden_size: int
    intermediate_size: int
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int
    head_dim: int
    rms_norm_eps: float
    rope_theta: float
    max_position_embeddings: int
    tie_word_embeddings: bool
    attention_bias: bool = False
    mlp_bias: bool = False
    bos_token_id: int | None = None

    @classmethod
    def from_config(cls, config: dict) -> LlamaShape:
        config = dict(config)
        config.setdefault("num_key_value_heads", config["num_attention_heads"])
        if config.get("head_dim") is None:
            config["head_dim"] = config["hidden_size"] // config["num_attention_heads"]
        rope = config.get("rope_parameters") or config.get("rope_scaling") or {}
        if rope.get("rope_type", "default") != "default":
            raise ValueError(f"unsupported rope scaling {rope!r}: only the default RoPE is")
        config.setdefault("rope_theta", rope.get("rope_theta", 10_000.0))
        names = {field.name for field in fields(cls)}
        return cls(**{key: value for key, value in config.items() if key in names})


class RmsNorm(nn.Module):
    def __init__(self, size: int, eps: float) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(size))
        self.eps = eps

    def forward(self, x: Tensor) -> Tensor:
        dtype = x.dtype
        x = x.float()
        x = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * x.to(dtype)


class Attention(nn.Module):
    def __init__(self, shape: LlamaShape) -> None:
        super().__init__()
        self.heads, self.kv_heads, self.head_dim = (
            shape.num_attention_heads,
            shape.num_key_value_heads,
            shape.head_dim,
        )
        hidden, bias = shape.hidden_size, shape.attention_bias
        self.q_proj = nn.Linear(hidden, self.heads * self.head_dim, bias=bias)
        self.k_proj = nn.Linear(hidden, self.kv_heads * self.head_dim, bias=bias)
        self.v_proj = nn.Linear(hidden, self.kv_heads * self.head_dim, bias=bias)
        self.o_proj = nn.Linear(self.heads * self.head_dim, hidden, bias=bias)

    def forward(
        self,
        x: Tensor,
        rope: tuple[Tensor, Tensor],
        mask: Tensor,
        past: tuple[Tensor, Tensor] | None,
    ) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        batch, length, _ = x.shape
        q = self.q_proj(x).view(batch, length, self.heads, self.head_dim).transpose(1, 2)
        k = self.k_proj(x).view(batch, length, self.kv_heads, self.head_dim).transpose(1, 2)
        v = self.v_proj(x).view(batch, length, self.kv_heads, self.head_dim).transpose(1, 2)
        cos, sin = rope
        q, k = q * cos + _rotate_half(q) * sin, k * cos + _rotate_half(k) * sin
        if past is not None:
            k, v = torch.cat([past[0], k], dim=2), torch.cat([past[1], v], dim=2)
        groups = self.heads // self.kv_heads
        out = functional.scaled_dot_product_attention(
            q,
            k.repeat_interleave(groups, dim=1),
            v.repeat_interleave(groups, dim=1),
            attn_mask=mask,
            scale=1.0 / math.sqrt(self.head_dim),
        )
        out = out.transpose(1, 2).reshape(batch, length, self.heads * self.head_dim)
        return self.o_proj(out), (k, v)


class Mlp(nn.Module):
    def __init__(self, shape: LlamaShape) -> None:
        super().__init__()
        hidden, inner, bias = shape.hidden_size, shape.intermediate_size, shape.mlp_bias
        self.gate_proj = nn.Linear(hidden, inner, bias=bias)
        self.up_proj = nn.Linear(hidden, inner, bias=bias)
        self.down_proj = nn.Linear(inner, hidden, bias=bias)

    def forward(self, x: Tensor) -> Tensor:
        return self.down_proj(functional.silu(self.gate_proj(x)) * self.up_proj(x))


class DecoderLayer(nn.Module):
    def __init__(self, shape: LlamaShape) -> None:
        super().__init__()
        self.self_attn = Attention(shape)
        self.mlp = Mlp(shape)
        self.input_layernorm = RmsNorm(shape.hidden_size, shape.rms_norm_eps)
        self.post_attention_layernorm = RmsNorm(shape.hidden_size, shape.rms_norm_eps)

    def forward(
        self,
        x: Tensor,
        rope: tuple[Tensor, Tensor],
        mask: Tensor,
        past: tuple[Tensor, Tensor] | None,
    ) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        attended, present = self.self_attn(self.input_layernorm(x), rope, mask, past)
        x = x + attended
        return x + self.mlp(self.post_attention_layernorm(x)), present


class LlamaBody(nn.Module):
    def __init__(self, shape: LlamaShape) -> None:
        super().__init__()
        self.embed_tokens = nn.Embedding(shape.vocab_size, shape.hidden_size)
        self.layers = nn.ModuleList(DecoderLayer(shape) for _ in range(shape.num_hidden_layers))
        self.norm = RmsNorm(shape.hidden_size, shape.rms_norm_eps)


@dataclass
class Generation:
    token_ids: list[int]
    text: str | None
    finish_reason: str  # "eos", "stop", "length" or "time"


class LlamaDecoder(nn.Module):
    """`LlamaForCausalLM` inference: same state_dict keys, same logits (float32)."""

    def __init__(self, shape: LlamaShape) -> None:
        super().__init__()
        self.shape = shape
        self.model = LlamaBody(shape)
        self.lm_head = nn.Linear(shape.hidden_size, shape.vocab_size, bias=False)
        if shape.tie_word_embeddings:
            self.lm_head.weight = self.model.embed_tokens.weight
        half = torch.arange(0, shape.head_dim, 2, dtype=torch.int64).float() / shape.head_dim
        self.register_buffer("inv_freq", 1.0 / (shape.rope_theta**half), persistent=False)

    @classmethod
    def from_files(
        cls, config_json: Path, weights_pt: Path, device: str | torch.device = "cpu"
    ) -> LlamaDecoder:
        config = json.loads(Path(config_json).read_text(encoding="utf-8"))
        decoder = cls(LlamaShape.from_config(config))
        state = torch.load(weights_pt, map_location="cpu", weights_only=True)
        if decoder.shape.tie_word_embeddings:
            state.pop("lm_head.weight", None)
        missing, unexpected = decoder.load_state_dict(state, strict=False)
        if decoder.shape.tie_word_embeddings:
            missing = [key for key in missing if key != "lm_head.weight"]
        if missing or unexpected:
            raise ValueError(f"{weights_pt}: missing keys {missing}, unexpected keys {unexpected}")
        return decoder.to(device).eval()

    def forward(
        self,
        input_ids: Tensor,
        past_key_values: KeyValueCache | None = None,
        attention_mask: Tensor | None = None,
    ) -> tuple[Tensor, KeyValueCache]:
        """Logits [B, L, V] for `input_ids` [B, L] after the cached tokens, and the new cache.

        `attention_mask` [B, cached + L] (1 = token, 0 = padding) is optional; without it every
        position is a token.
        """
        batch, length = input_ids.shape
        cached = 0 if not past_key_values else past_key_values[0][0].shape[2]
        positions = torch.arange(cached, cached + length, device=input_ids.device)
        freqs = torch.outer(positions.float(), self.inv_freq)
        angles = torch.cat([freqs, freqs], dim=-1)
        rope = (angles.cos()[None, None], angles.sin()[None, None])
        mask = self._mask(batch, length, cached, attention_mask, input_ids.device)
        x = self.model.embed_tokens(input_ids)
        presents: KeyValueCache = []
        for index, layer in enumerate(self.model.layers):
            past = past_key_values[index] if past_key_values else None
            x, present = layer(x, rope, mask, past)
            presents.append(present)
        return self.lm_head(self.model.norm(x)), presents

    @staticmethod
    def _mask(
        batch: int, length: int, cached: int, attention_mask: Tensor | None, device: torch.device
    ) -> Tensor:
        total = cached + length
        rows = torch.arange(cached, total, device=device)[:, None]
        allowed = torch.arange(total, device=device)[None, :] <= rows
        allowed = allowed[None, None].expand(batch, 1, length, total)
        if attention_mask is not None:
            allowed = allowed & attention_mask[:, None, None, :].bool()
        mask = torch.zeros(allowed.shape, device=device)
        return mask.masked_fill(~allowed, torch.finfo(mask.dtype).min)

    @torch.inference_mode()
    def generate(
        self,
        prompt_ids: Sequence[int],
        max_new_tokens: int,
        eos_token_id: int | Sequence[int] | None = None,
        stop: Sequence[str] = (),
        decode: Callable[[list[int]], str] | None = None,
        time_limit_s: float | None = None,
    ) -> Generation:
        """Greedy decoding of one prompt with the key/value cache.

        Stops at an end-of-sequence token, at the first stop string (the text is cut before
        it; needs `decode`), after `max_new_tokens`, or when `time_limit_s` has passed.
        """
        if stop and decode is None:
            raise ValueError("stop strings need a decode function")
        started = time.monotonic()
        eos = {eos_token_id} if isinstance(eos_token_id, int) else set(eos_token_id or ())
        room = self.shape.max_position_embeddings - max(max_new_tokens, 0)
        # An empty prompt starts from the beginning-of-sequence token when the model has one.
        prompt = list(prompt_ids)[-max(room, 1) :] or _as_list(self.shape.bos_token_id)
        device = self.lm_head.weight.device
        tokens: list[int] = []
        text = decode(tokens) if decode is not None else None
        reason = "length" if prompt else "empty_prompt"
        if not prompt:
            max_new_tokens = 0
        step_input = torch.tensor([prompt], dtype=torch.int64, device=device)
        past: KeyValueCache | None = None
        for _ in range(max(max_new_tokens, 0)):
            if time_limit_s is not None and time.monotonic() - started >= time_limit_s:
                reason = "time"
                break
            logits, past = self(step_input, past)
            token = int(logits[0, -1].argmax())
            del logits
            if token in eos:
                reason = "eos"
                break
            tokens.append(token)
            if decode is not None:
                text = decode(tokens)
                cut = _first_stop(text, stop)
                if cut is not None:
                    text, reason = text[:cut], "stop"
                    break
            step_input = torch.tensor([[token]], dtype=torch.int64, device=device)
        del past, step_input
        return Generation(token_ids=tokens, text=text, finish_reason=reason)


def build_prompt(prompt_format: str, context: str, reply_start: str = "") -> str:
    """The text the model continues, as training built it.

    `prompt_format` comes from export.json (e.g. "{context}\nAgent: {reply_start}"); the
    context loses trailing whitespace, and without a reply start so does the whole prompt.
    """
    prompt = prompt_format.format(context=context.rstrip(), reply_start=reply_start.strip())
    return prompt if reply_start.strip() else prompt.rstrip()


def complete_text(
    decoder: LlamaDecoder,
    tokenizer: Any,
    text: str,
    max_length: int,
    eos_token_id: int | Sequence[int] | None,
    max_new_tokens: int,
    stop: Sequence[str] = (),
    time_limit_s: float | None = None,
) -> Generation:
    """Greedy completion of the prompt `text` with a `tokenizers.Tokenizer` (or alike).

    The prompt is encoded without special tokens, as in training, and keeps its last
    `max_length` tokens; special tokens are dropped from the completion's text.
    """
    prompt = tokenizer.encode(text, add_special_tokens=False).ids[-max_length:]
    return decoder.generate(
        prompt,
        max_new_tokens=max_new_tokens,
        eos_token_id=eos_token_id,
        stop=stop,
        decode=lambda ids: tokenizer.decode(ids, skip_special_tokens=True),
        time_limit_s=time_limit_s,
    )


def _first_stop(text: str, stop: Sequence[str]) -> int | None:
    found = [text.find(item) for item in stop if item and item in text]
    return min(found) if found else None


def _as_list(token: int | list[int] | None) -> list[int]:
    if token is None:
        return []
    return [token] if isinstance(token, int) else list(token)[:1]


def _rotate_half(x: Tensor) -> Tensor:
    first, second = x.chunk(2, dim=-1)
    return torch.cat([-second, first], dim=-1)
