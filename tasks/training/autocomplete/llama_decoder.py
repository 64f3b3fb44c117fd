"""A Llama-architecture causal LM in plain torch, with a key/value cache and greedy generation.

The reference the served generator (`generator.GreedyGenerator`, scripted) is checked against:
it matches `LlamaForCausalLM` numerically, from a Hugging Face LlamaConfig dict and the model's
state_dict, and its `generate` is the in-process decoder the served completions must equal.
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


# The RoPE types computed here, each with the parameters it reads besides rope_theta.
ROPE_PARAMETERS = {
    "default": (),
    "linear": ("factor",),
    "llama3": ("factor", "low_freq_factor", "high_freq_factor", "original_max_position_embeddings"),
}
ROPE_TYPES = tuple(ROPE_PARAMETERS)
ACTIVATIONS: dict[str, Callable[[Tensor], Tensor]] = {
    "silu": functional.silu,
    "swish": functional.silu,
}


class UnsupportedLlamaConfig(ValueError):
    """A config names something this decoder does not compute as transformers does."""


@dataclass(frozen=True)
class Rope:
    """Rotary embedding parameters, computed as transformers' `modeling_rope_utils` does."""

    rope_type: str
    rope_theta: float
    factor: float | None = None  # "linear" and "llama3"
    low_freq_factor: float | None = None  # "llama3" from here on
    high_freq_factor: float | None = None
    original_max_position_embeddings: int | None = None

    @classmethod
    def from_config(cls, config: dict) -> Rope:
        """From `rope_parameters` (transformers 5) or `rope_theta` + `rope_scaling` (4.x)."""
        rope = dict(config.get("rope_parameters") or config.get("rope_scaling") or {})
        if rope and all(isinstance(value, dict) for value in rope.values()):
            raise UnsupportedLlamaConfig(f"per-layer RoPE parameters {sorted(rope)}")
        rope_type = rope.get("rope_type") or rope.get("type") or "default"
        if rope_type not in ROPE_TYPES:
            raise UnsupportedLlamaConfig(
                f"RoPE type {rope_type!r} (supported: {', '.join(ROPE_TYPES)})"
            )
        partial = rope.get("partial_rotary_factor", config.get("partial_rotary_factor"))
        if partial not in (None, 1, 1.0):
            raise UnsupportedLlamaConfig(f"partial_rotary_factor {partial}")
        theta = rope.get("rope_theta", config.get("rope_theta"))
        if theta is None:
            raise UnsupportedLlamaConfig("no RoPE theta (rope_parameters.rope_theta)")
        if rope_type == "llama3":  # transformers falls back to the model's own length
            rope.setdefault("original_max_position_embeddings", config["max_position_embeddings"])
        needed = ROPE_PARAMETERS[rope_type]
        missing = [name for name in needed if rope.get(name) is None]
        if missing:
            raise UnsupportedLlamaConfig(f"RoPE type {rope_type!r} without {', '.join(missing)}")
        values = {name: float(rope[name]) for name in needed}
        if "original_max_position_embeddings" in values:
            values["original_max_position_embeddings"] = int(
                rope["original_max_position_embeddings"]
            )
        return cls(rope_type, float(theta), **values)

    def to_config(self) -> dict[str, Any]:
        """`rope_parameters` with every value this type uses, and nothing else."""
        names = ("rope_type", "rope_theta", *ROPE_PARAMETERS[self.rope_type])
        return {name: getattr(self, name) for name in names}

    def inv_freq(self, head_dim: int) -> Tensor:
        steps = torch.arange(0, head_dim, 2, dtype=torch.int64).float() / head_dim
        inv_freq = 1.0 / (self.rope_theta**steps)
        if self.rope_type == "linear":
            return inv_freq / self.factor
        if self.rope_type == "llama3":
            return self._llama3(inv_freq)
        return inv_freq

    @property
    def attention_scaling(self) -> float:
        return 1.0  # cos/sin are scaled only by types this decoder refuses (yarn, longrope)

    def _llama3(self, inv_freq: Tensor) -> Tensor:
        factor, low, high = self.factor, self.low_freq_factor, self.high_freq_factor
        old_context = self.original_max_position_embeddings
        low_freq_wavelen, high_freq_wavelen = old_context / low, old_context / high
        wavelen = 2 * math.pi / inv_freq
        scaled = torch.where(wavelen > low_freq_wavelen, inv_freq / factor, inv_freq)
        smooth = (old_context / wavelen - low) / (high - low)
        smoothed = (1 - smooth) * scaled / factor + smooth * scaled
        medium = ~(wavelen < high_freq_wavelen) * ~(wavelen > low_freq_wavelen)
        return torch.where(medium, smoothed, scaled)


@dataclass(frozen=True)
class LlamaShape:
    """Everything `LlamaForCausalLM`'s forward depends on, read from a Hugging Face config."""

    vocab_size: int
    hidden_size: int
    intermediate_size: int
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int
    head_dim: int
    rms_norm_eps: float
    rope: Rope
    max_position_embeddings: int
    tie_word_embeddings: bool
    hidden_act: str = "silu"
    attention_bias: bool = False
    mlp_bias: bool = False
    bos_token_id: int | None = None

    @classmethod
    def from_config(cls, config: dict) -> LlamaShape:
        """Raises `UnsupportedLlamaConfig` for a config this decoder would compute wrongly.

        Absent values take `LlamaConfig`'s defaults; `pretraining_tp` is ignored because it
        only splits the same matrix products (transformers 5 ignores it too).
        """
        config = dict(config)
        model_type = config.get("model_type", "llama")
        if model_type != "llama":
            raise UnsupportedLlamaConfig(f"model_type {model_type!r} (only 'llama')")
        heads = config["num_attention_heads"]
        config["num_key_value_heads"] = config.get("num_key_value_heads") or heads
        config["head_dim"] = config.get("head_dim") or config["hidden_size"] // heads
        config.setdefault("rms_norm_eps", 1e-6)
        config.setdefault("tie_word_embeddings", False)
        config["hidden_act"] = config.get("hidden_act") or "silu"
        if config["hidden_act"] not in ACTIVATIONS:
            raise UnsupportedLlamaConfig(
                f"hidden_act {config['hidden_act']!r} (supported: {', '.join(ACTIVATIONS)})"
            )
        if heads % config["num_key_value_heads"]:
            raise UnsupportedLlamaConfig(
                f"{heads} attention heads over {config['num_key_value_heads']} key/value heads"
            )
        config["rope"] = Rope.from_config(config)
        names = {field.name for field in fields(cls)}
        return cls(**{key: value for key, value in config.items() if key in names})

    def to_config(self) -> dict[str, Any]:
        """config.json as the export writes it: every value explicit, RoPE normalised."""
        config: dict[str, Any] = {"model_type": "llama"}
        config |= {field.name: getattr(self, field.name) for field in fields(self)}
        config["rope_parameters"] = config.pop("rope").to_config()
        return config


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
        self.act = ACTIVATIONS[shape.hidden_act]

    def forward(self, x: Tensor) -> Tensor:
        return self.down_proj(self.act(self.gate_proj(x)) * self.up_proj(x))


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
        self.register_buffer("inv_freq", shape.rope.inv_freq(shape.head_dim), persistent=False)
        self.attention_scaling = shape.rope.attention_scaling

    @classmethod
    def from_files(
        cls, config_json: Path, weights_pt: Path, device: str | torch.device = "cpu"
    ) -> LlamaDecoder:
        config = json.loads(Path(config_json).read_text(encoding="utf-8"))
        state = torch.load(weights_pt, map_location="cpu", weights_only=True)
        return cls.from_state(config, state, str(weights_pt)).to(device)

    @classmethod
    def from_state(
        cls, config: dict[str, Any], state: dict[str, Tensor], source: str = "state_dict"
    ) -> LlamaDecoder:
        """The decoder of a Hugging Face config and a `LlamaForCausalLM` state_dict, in float32."""
        decoder = cls(LlamaShape.from_config(config))
        state = {key: value.detach().float() for key, value in state.items()}
        if decoder.shape.tie_word_embeddings:
            state.pop("lm_head.weight", None)
        missing, unexpected = decoder.load_state_dict(state, strict=False)
        if decoder.shape.tie_word_embeddings:
            missing = [key for key in missing if key != "lm_head.weight"]
        if missing or unexpected:
            raise ValueError(f"{source}: missing keys {missing}, unexpected keys {unexpected}")
        return decoder.eval()

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
        scaling = self.attention_scaling
        rope = (angles.cos()[None, None] * scaling, angles.sin()[None, None] * scaling)
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
