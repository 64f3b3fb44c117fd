"""Tiny randomly initialised models: a BERT saved like a base encoder, with the real MiniLM
tokenizer, and a Llama saved as the serving decoder reads it."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import torch
from transformers import BertConfig, BertModel, LlamaConfig, LlamaForCausalLM

from tasks.training.base_models import encoder_location

TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "vocab.txt",
    "special_tokens_map.json",
)

BERT_HIDDEN_SIZE = 32


def tiny_bert(seed: int, max_position_embeddings: int = 64) -> BertModel:
    """A 2-layer BERT over the MiniLM vocabulary, random from `seed`, in eval mode."""
    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=30522,
        hidden_size=BERT_HIDDEN_SIZE,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=max_position_embeddings,
    )
    return BertModel(config).eval()


def write_tiny_llama(directory: Path, seed: int, **config: Any) -> LlamaForCausalLM:
    """`tiny_llama` written to `directory` as `config.json` and `weights.pt`."""
    model = tiny_llama(seed, **config)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "config.json").write_text(model.config.to_json_string(), encoding="utf-8")
    torch.save(model.state_dict(), directory / "weights.pt")
    return model


def tiny_llama(seed: int, **config: Any) -> LlamaForCausalLM:
    """A 2-layer Llama with grouped-query attention, random from `seed`; `config` sets the
    vocabulary, positions and the rest."""
    torch.manual_seed(seed)
    llama = LlamaConfig(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=8,
        **config,
    )
    return LlamaForCausalLM(llama).eval()


def write_tiny_encoder(directory: Path, seed: int = 0) -> Path:
    tiny_bert(seed, max_position_embeddings=512).save_pretrained(directory)
    source = Path(encoder_location(None))
    for name in TOKENIZER_FILES:
        if (source / name).is_file():
            shutil.copyfile(source / name, directory / name)
    return directory


def tiny_training_environ(encoder: Path) -> dict[str, str]:
    """Settings overrides that train every kind from tiny models in seconds, gates at zero."""
    prefix = "MME_FACTORY_TRAINING__"
    values = {
        "EMBEDDING__BASE_MODEL": str(encoder),
        "EMBEDDING__EPOCHS": "4",
        "EMBEDDING__LEARNING_RATE": "0.001",
        "EMBEDDING__MIN_RECALL_AT_1": "0",
        "EMBEDDING__ARTICLE_MAX_LENGTH": "48",
        "EMBEDDING__TRAIN_TOKEN_EMBEDDINGS": "true",
        "CLASSIFIER__BASE_MODEL": str(encoder),
        "CLASSIFIER__EPOCHS": "2",
        "CLASSIFIER__MIN_ACCURACY": "0",
        # A random tiny model has no useful token table to keep frozen.
        "CLASSIFIER__TRAIN_TOKEN_EMBEDDINGS": "true",
        "AUTOCOMPLETE__EPOCHS": "30",
        "AUTOCOMPLETE__LEARNING_RATE": "0.005",
        "AUTOCOMPLETE__EVAL_NEXT_WORDS": "20",
        "AUTOCOMPLETE__MIN_NEXT_WORD_ACCURACY": "0",
        "AUTOCOMPLETE__COMPACT__VOCAB_SIZE": "600",
        "AUTOCOMPLETE__COMPACT__HIDDEN_SIZE": "32",
        "AUTOCOMPLETE__COMPACT__INTERMEDIATE_SIZE": "64",
        "AUTOCOMPLETE__COMPACT__NUM_HIDDEN_LAYERS": "1",
        "AUTOCOMPLETE__MAX_LENGTH": "96",
    }
    return {prefix + name: value for name, value in values.items()}
