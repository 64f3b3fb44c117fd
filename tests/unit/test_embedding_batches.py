"""A batch's repeated texts are encoded once, with the same embeddings and gradients."""

from __future__ import annotations

import torch

from tasks.training.base_models import load_encoder
from tasks.training.embedding import encode_once
from tasks.training.encoders import SentenceEncoder, tokenize
from test_support.tiny_base_models import write_tiny_encoder


def test_repeated_texts_encoded_once_give_the_same_embeddings_and_gradients(tmp_path):
    transformer, tokenizer = load_encoder(str(write_tiny_encoder(tmp_path / "tiny")))
    encoder = SentenceEncoder(transformer).eval()  # no dropout: the two must match exactly
    texts = ["reset my password", "the lamp came dented", "reset my password", "where is it"]

    def gradients(embedded: torch.Tensor) -> list[torch.Tensor]:
        encoder.zero_grad()
        (embedded @ torch.linspace(-1, 1, embedded.shape[1])).square().sum().backward()
        return [p.grad.clone() for p in encoder.parameters() if p.grad is not None]

    torch.manual_seed(0)
    every = encoder(**tokenize(tokenizer, texts, 32))
    every_grads = gradients(every)
    torch.manual_seed(0)
    once = encode_once(encoder, tokenizer, texts, 32)
    once_grads = gradients(once)

    torch.testing.assert_close(once, every, atol=1e-5, rtol=1e-4)
    for a, b in zip(once_grads, every_grads, strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)
