"""The modules exported for serving: trained encoders and classifiers rebuilt on `PlainBert` and
compiled by `torch.jit.script`, in the export's dtype.

Inputs stay int64 token ids and mask. In half precision only the BERT layers are half: pooling,
normalisation, the classifier head and softmax run in float32, so the output is float32 (what
the Triton configs declare) and no less exact than the last hidden state.
"""

from __future__ import annotations

import torch
from torch import nn

from tasks.training.encoders import IntentClassifier, SentenceEncoder, mean_pool
from tasks.training.plain_bert import PlainBert


class PooledEncoder(nn.Module):
    """Mean-pooled, L2-normalised float32 embedding of the BERT's last hidden state."""

    def __init__(self, bert: PlainBert) -> None:
        super().__init__()
        self.bert = bert

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = self.bert(input_ids, attention_mask).float()
        return nn.functional.normalize(mean_pool(hidden, attention_mask), p=2.0, dim=-1)


class ClassifierProbabilities(nn.Module):
    """Softmax over the linear head's logits of the pooled embedding."""

    def __init__(self, encoder: PooledEncoder, head: nn.Linear) -> None:
        super().__init__()
        self.encoder = encoder
        self.head = head

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.head(self.encoder(input_ids, attention_mask)), dim=-1)


def _pooled(encoder: SentenceEncoder, dtype: torch.dtype) -> PooledEncoder:
    return PooledEncoder(PlainBert.from_transformers(encoder.transformer).to(dtype))


def scripted_encoder(encoder: SentenceEncoder, dtype: torch.dtype) -> torch.jit.ScriptModule:
    return torch.jit.script(_pooled(encoder, dtype).eval())


def scripted_classifier(classifier: IntentClassifier, dtype: torch.dtype) -> torch.jit.ScriptModule:
    head = nn.Linear(classifier.head.in_features, classifier.head.out_features)
    head.load_state_dict({k: v.detach().cpu() for k, v in classifier.head.state_dict().items()})
    module = ClassifierProbabilities(_pooled(classifier.encoder, dtype), head)
    return torch.jit.script(module.eval())
