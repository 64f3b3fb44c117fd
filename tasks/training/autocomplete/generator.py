"""The autocomplete generator served on Triton's PyTorch backend: greedy decoding of a batch of
prompts with the key/value cache inside one TorchScript graph, one call per request.

Inputs are left-padded token ids, their attention mask and each row's new-token limit; outputs
are the new token ids (-1 after a row's end) and why each row ended. The arithmetic is
`LlamaDecoder`'s, step for step, so the tokens equal its `generate`; positions are counted per
row from its first token, so padding changes nothing. Every tensor is made on the inputs'
device and in the weights' dtype: the scripted graph holds no device.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from tasks.training.autocomplete.llama_decoder import LlamaBody, LlamaDecoder, LlamaShape

# Why a row ended (the `finish` output).
FINISH_LENGTH = 0
FINISH_EOS = 1
FINISH_EMPTY_PROMPT = 2  # the row asked for a negative number of tokens: nothing to continue
FINISH_REASONS = {FINISH_LENGTH: "length", FINISH_EOS: "eos", FINISH_EMPTY_PROMPT: "empty_prompt"}
NO_TOKEN = -1


class GreedyGenerator(nn.Module):
    def __init__(
        self,
        shape: LlamaShape,
        eos_token_ids: list[int],
        max_new_tokens_limit: int,
    ) -> None:
        super().__init__()
        self.model = LlamaBody(shape)
        self.lm_head = nn.Linear(shape.hidden_size, shape.vocab_size, bias=False)
        if shape.tie_word_embeddings:
            self.lm_head.weight = self.model.embed_tokens.weight
        self.register_buffer("inv_freq", shape.rope.inv_freq(shape.head_dim))
        self.register_buffer("eos_ids", torch.tensor(eos_token_ids or [NO_TOKEN]))
        self.attention_scaling = float(shape.rope.attention_scaling)
        self.max_new_tokens_limit = int(max_new_tokens_limit)
        self.no_token, self.finish_length = NO_TOKEN, FINISH_LENGTH
        self.finish_eos, self.finish_empty_prompt = FINISH_EOS, FINISH_EMPTY_PROMPT

    @classmethod
    def from_decoder(
        cls,
        decoder: LlamaDecoder,
        eos_token_ids: list[int],
        max_new_tokens_limit: int,
        dtype: torch.dtype = torch.float32,
    ) -> GreedyGenerator:
        generator = cls(decoder.shape, eos_token_ids, max_new_tokens_limit)
        state = {key: value for key, value in decoder.state_dict().items() if key != "inv_freq"}
        generator.load_state_dict(state, strict=False)
        generator.to(dtype)
        generator.inv_freq = decoder.inv_freq.detach().float().clone()  # positions stay fp32
        return generator.eval()

    def forward(
        self, input_ids: Tensor, attention_mask: Tensor, max_new_tokens: Tensor
    ) -> tuple[Tensor, Tensor]:
        """token_ids [B, N] (N = the largest limit asked; NO_TOKEN after a row's end) and
        finish [B, 1] (FINISH_*). A limit above `max_new_tokens_limit` is lowered to it."""
        limits = max_new_tokens.reshape(-1).clamp(max=self.max_new_tokens_limit)
        batch = input_ids.shape[0]
        steps = int(limits.max().item()) if batch > 0 else 0
        steps = max(steps, 0)
        device = input_ids.device
        tokens = torch.full((batch, steps), self.no_token, dtype=torch.int64, device=device)
        finish = torch.where(limits < 0, self.finish_empty_prompt, self.finish_length)
        done = limits <= 0
        if steps == 0:
            return tokens, finish.reshape(batch, 1)
        mask = attention_mask.to(torch.int64)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        logits, past = self._step(input_ids, positions, mask, None)
        next_position = positions[:, -1:] + 1
        for step in range(steps):
            token = logits[:, -1].argmax(-1)
            is_eos = (token[:, None] == self.eos_ids[None, :]).any(-1)
            finish = torch.where(is_eos & ~done, self.finish_eos, finish)
            done = done | is_eos
            tokens[:, step] = torch.where(done, self.no_token, token)
            done = done | (limits <= step + 1)
            if bool(done.all()):
                break
            mask = torch.cat([mask, torch.ones_like(mask[:, :1])], dim=1)
            logits, past = self._step(token[:, None], next_position, mask, past)
            next_position = next_position + 1
        return tokens, finish.reshape(batch, 1)

    @torch.jit.export
    def logits(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        """Logits of every prompt position, in float32 (for the export's parity check)."""
        mask = attention_mask.to(torch.int64)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        logits, _ = self._step(input_ids, positions, mask, None)
        return logits.float()

    def _step(
        self,
        input_ids: Tensor,
        positions: Tensor,
        attention_mask: Tensor,
        past: list[tuple[Tensor, Tensor]] | None,
    ) -> tuple[Tensor, list[tuple[Tensor, Tensor]]]:
        x = self.model.embed_tokens(input_ids)
        freqs = positions.float()[:, :, None] * self.inv_freq[None, None, :]
        angles = torch.cat([freqs, freqs], dim=-1)
        cos = (angles.cos()[:, None] * self.attention_scaling).to(x.dtype)
        sin = (angles.sin()[:, None] * self.attention_scaling).to(x.dtype)
        mask = self._mask(input_ids.shape[1], attention_mask, x.dtype)
        presents: list[tuple[Tensor, Tensor]] = []
        for index, layer in enumerate(self.model.layers):
            layer_past: tuple[Tensor, Tensor] | None = None
            if past is not None:
                layer_past = past[index]
            x, present = layer(x, (cos, sin), mask, layer_past)
            presents.append(present)
        return self.lm_head(self.model.norm(x)), presents

    def _mask(self, length: int, attention_mask: Tensor, dtype: torch.dtype) -> Tensor:
        """Additive mask [B, 1, length, total]: causal, and never onto padding.

        -inf in any dtype; a padding position still sees itself, so no row is empty (an empty
        row would make NaN, which reaches real tokens through the key/value cache)."""
        batch, total = attention_mask.shape
        device = attention_mask.device
        rows = torch.arange(total - length, total, device=device)[:, None]
        columns = torch.arange(total, device=device)[None, :]
        allowed = (columns <= rows)[None, None].expand(batch, 1, length, total)
        allowed = allowed & (attention_mask[:, None, None, :] != 0) | (columns == rows)
        mask = torch.zeros(allowed.shape, dtype=dtype, device=device)
        return mask.masked_fill(~allowed, float("-inf"))


def script_generator(generator: GreedyGenerator) -> torch.jit.ScriptModule:
    return torch.jit.script(generator)
