"""A tiny randomly initialised BERT saved like a base encoder, with the real MiniLM tokenizer."""

from __future__ import annotations

import shutil
from pathlib import Path

import torch
from transformers import BertConfig, BertModel

from tasks.training.base_models import encoder_location

TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "vocab.txt",
    "special_tokens_map.json",
)


def write_tiny_encoder(directory: Path, seed: int = 0) -> Path:
    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=30522,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=512,
    )
    BertModel(config).save_pretrained(directory)
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
