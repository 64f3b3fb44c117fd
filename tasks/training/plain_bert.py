"""A BERT encoder in plain torch that `torch.jit.script` compiles with no device in its graph.

It computes what transformers' BertModel computes at inference (embeddings and LayerNorm, then
self-attention, GELU feed-forward and LayerNorm per layer) and loads that model's weights by
name. Every tensor it makes takes its device from the inputs, so one `model.pt` runs on the CPU
or on `cuda:0`, wherever the serving backend puts it.
"""

from __future__ import annotations

import re
from typing import Any

import torch
from torch import nn

from mme_factory.errors import MmeFactoryError

SUPPORTED = "BERT encoders (config.model_type 'bert', e.g. all-MiniLM-L6-v2)"
ACTIVATIONS = {"gelu": "none", "gelu_new": "tanh", "gelu_pytorch_tanh": "tanh"}
_LAYER_KEY = re.compile(r"encoder\.layer\.(?P<index>\d+)\.(?P<part>.+)\.(?P<tensor>weight|bias)")
_LAYER_PARTS = {
    "attention.self.query": "query",
    "attention.self.key": "key",
    "attention.self.value": "value",
    "attention.output.dense": "attention_output",
    "attention.output.LayerNorm": "attention_norm",
    "intermediate.dense": "intermediate",
    "output.dense": "output",
    "output.LayerNorm": "output_norm",
}
_EMBEDDING_PARTS = {
    "embeddings.word_embeddings": "word_embeddings",
    "embeddings.position_embeddings": "position_embeddings",
    "embeddings.token_type_embeddings": "token_type_embeddings",
    "embeddings.LayerNorm": "embedding_norm",
}


class UnsupportedEncoder(MmeFactoryError):
    """A base encoder the device-free export does not implement."""


class BertLayer(nn.Module):
    def __init__(self, config: Any, approximate: str) -> None:
        super().__init__()
        hidden, eps = int(config.hidden_size), float(config.layer_norm_eps)
        self.heads = int(config.num_attention_heads)
        self.approximate = approximate
        self.query = nn.Linear(hidden, hidden)
        self.key = nn.Linear(hidden, hidden)
        self.value = nn.Linear(hidden, hidden)
        self.attention_output = nn.Linear(hidden, hidden)
        self.attention_norm = nn.LayerNorm(hidden, eps=eps)
        self.intermediate = nn.Linear(hidden, int(config.intermediate_size))
        self.output = nn.Linear(int(config.intermediate_size), hidden)
        self.output_norm = nn.LayerNorm(hidden, eps=eps)

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        batch, length, hidden = x.shape
        return x.view(batch, length, self.heads, hidden // self.heads).transpose(1, 2)

    def forward(self, hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        batch, length, width = hidden.shape
        attended = nn.functional.scaled_dot_product_attention(
            self._split(self.query(hidden)),
            self._split(self.key(hidden)),
            self._split(self.value(hidden)),
            attn_mask=mask,
        )
        attended = attended.transpose(1, 2).reshape(batch, length, width)
        hidden = self.attention_norm(self.attention_output(attended) + hidden)
        inner = nn.functional.gelu(self.intermediate(hidden), approximate=self.approximate)
        return self.output_norm(self.output(inner) + hidden)


class PlainBert(nn.Module):
    """Token ids and attention mask in, the last hidden state out (token type 0 throughout)."""

    def __init__(self, config: Any) -> None:
        super().__init__()
        approximate = _check_supported(config)
        hidden = int(config.hidden_size)
        self.word_embeddings = nn.Embedding(int(config.vocab_size), hidden)
        self.position_embeddings = nn.Embedding(int(config.max_position_embeddings), hidden)
        self.token_type_embeddings = nn.Embedding(int(config.type_vocab_size), hidden)
        self.embedding_norm = nn.LayerNorm(hidden, eps=float(config.layer_norm_eps))
        self.layers = nn.ModuleList(
            [BertLayer(config, approximate) for _ in range(int(config.num_hidden_layers))]
        )

    @classmethod
    def from_transformers(cls, model: Any) -> PlainBert:
        """The same encoder as a transformers BertModel, with its weights (moved to the CPU)."""
        plain = cls(model.config)
        state = {
            _plain_key(key): value.detach().cpu()
            for key, value in model.state_dict().items()
            if not key.startswith("pooler.")
        }
        missing, unexpected = plain.load_state_dict(state, strict=False)
        if missing or unexpected:
            raise UnsupportedEncoder(
                f"the base encoder's weights do not fit a BERT encoder (missing {missing}, "
                f"unexpected {unexpected}); supported: {SUPPORTED}"
            )
        return plain.eval()

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(input_ids.shape[1], device=input_ids.device)
        hidden = (
            self.word_embeddings(input_ids)
            + self.token_type_embeddings.weight[0]
            + self.position_embeddings(positions)
        )
        hidden = self.embedding_norm(hidden)
        keep = attention_mask[:, None, None, :].to(hidden.dtype)
        # BERT's own additive mask value: its exp() is 0 in every float type, and added to a
        # score it cannot overflow half precision as the type's minimum can.
        mask = (1.0 - keep) * -10000.0
        for layer in self.layers:
            hidden = layer(hidden, mask)
        return hidden


def _check_supported(config: Any) -> str:
    """The GELU approximation the config asks for; raises for anything else than BERT's."""
    model_type = getattr(config, "model_type", None)
    if model_type != "bert":
        raise UnsupportedEncoder(
            f"base encoder of type {model_type!r} cannot be exported; supported: {SUPPORTED}"
        )
    activation = getattr(config, "hidden_act", None)
    if activation not in ACTIVATIONS:
        raise UnsupportedEncoder(
            f"BERT activation {activation!r} cannot be exported; supported: "
            f"{', '.join(ACTIVATIONS)}"
        )
    positions = getattr(config, "position_embedding_type", "absolute")
    if positions != "absolute" or getattr(config, "is_decoder", False):
        raise UnsupportedEncoder(
            f"BERT with {positions} position embeddings or as a decoder cannot be exported; "
            f"supported: {SUPPORTED} with absolute positions"
        )
    return ACTIVATIONS[activation]


def _plain_key(key: str) -> str:
    module, _, tensor = key.rpartition(".")
    if module in _EMBEDDING_PARTS:
        return f"{_EMBEDDING_PARTS[module]}.{tensor}"
    found = _LAYER_KEY.fullmatch(key)
    if found is not None and found["part"] in _LAYER_PARTS:
        return f"layers.{found['index']}.{_LAYER_PARTS[found['part']]}.{found['tensor']}"
    return key  # reported by the load as unexpected
