"""Fine-tune, gate and export with tiny models: the run directory, gate and bad input."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import torch

from cli.main import main
from mme_factory.errors import ValidationFailed
from mme_factory.model_kinds import ModelKind
from mme_factory.settings import load_settings
from tasks.data.training_data import TrainingDataError, check_intents, split_labelled
from tasks.training.base_models import BaseModelNotFound, load_encoder
from tasks.training.encoders import SentenceEncoder, embed
from tasks.training.export_torchscript import ExportParityError, check_parity, parity_batches
from tasks.training.train_customer import train_customer
from test_support.paths import ACME
from test_support.tiny_base_models import tiny_training_environ


def tiny_environ(tmp_path, tiny_encoder, **extra: str) -> dict[str, str]:
    environ = {
        "MME_FACTORY_STATE_DIR": str(tmp_path / "state"),
        **tiny_training_environ(tiny_encoder),
    }
    environ.update(extra)
    return environ


def test_train_all_kinds_writes_one_run_directory(trained_tiny_run):
    run, settings = trained_tiny_run.path, trained_tiny_run.settings
    small_acme = trained_tiny_run.data
    record = json.loads((run / "run.json").read_text())
    assert record["customer"] == "acme" and len(record["data_sha256"]) == 64
    assert set(record["versions"]) >= {"torch", "transformers", "tokenizers"}
    assert set(record["kinds"]) == {"embedding", "classifier", "autocomplete"}
    for kind, outcome in record["kinds"].items():
        metadata = json.loads((run / kind / "metadata.json").read_text())
        assert metadata["seed"] == settings.training.seed
        assert metadata["timings"]["train_s"] > 0
        assert metadata["status"] == outcome["status"]
        if metadata["status"] == "rejected":
            assert (
                not list((run / kind).rglob("model.pt"))
                and not (run / kind / "weights.pt").exists()
            )
    metrics = record["kinds"]["embedding"]["metrics"]
    assert {"recall_at_1", "recall_at_5", "mrr"} <= set(metrics["fine_tuned"])
    assert set(record["kinds"]["classifier"]["metrics"]["fine_tuned"]["per_intent"]) == set(
        pd.read_csv(small_acme / "intents.csv")["intent"]
    )
    assert record["kinds"]["autocomplete"]["metrics"]["unigram"]["perplexity_per_word"] > 1


def test_exports_follow_the_packaging_contract(trained_tiny_run):
    run = trained_tiny_run.path
    classifier = run / "classifier"
    assert json.loads((classifier / "export.json").read_text())["num_labels"] == 16
    assert len((classifier / "labels.txt").read_text().splitlines()) == 16
    exported = json.loads((classifier / "export.json").read_text())
    assert exported["dtype"] == "float16"  # "auto" on the default ml.g4dn endpoints
    scripted = torch.jit.load(str(classifier / "model.pt"))
    ids = torch.tensor([[101, 7592, 102, 0], [101, 7592, 2088, 102]])
    probabilities = scripted(ids, (ids > 0).long())
    assert probabilities.shape == (2, 16) and probabilities.dtype == torch.float32
    assert torch.allclose(probabilities.sum(dim=1), torch.ones(2), atol=1e-5)
    parity = torch.load(classifier / "parity.pt", weights_only=True)
    assert parity["tolerance"] == 1e-2  # export_parity_tolerance_fp16
    recorded = scripted(**parity["batches"][2])
    torch.testing.assert_close(recorded, parity["outputs"][2], atol=parity["tolerance"], rtol=0)
    autocomplete = run / "autocomplete"
    export = json.loads((autocomplete / "export.json").read_text())
    # float16 by default ("auto" on ml.g4dn.2xlarge): the export held the generator's logits to
    # export_parity_tolerance_fp16 of their scale, and would have failed otherwise.
    assert 0 <= export["parity_max_abs_diff"] <= 0.1
    assert export["dtype"] == "float16" and "cpu" in export["parity_devices"]
    assert {"config.json", "model.pt", "tokenizer.json"} <= {p.name for p in autocomplete.iterdir()}
    assert not (autocomplete / "weights.pt").exists()
    generator = torch.jit.load(str(autocomplete / "model.pt"))
    assert generator.lm_head.weight.dtype == torch.float16
    ids = torch.tensor([[0, 0, 5, 9], [3, 4, 5, 9]])
    tokens, finish = generator(ids, (ids > 0).long(), torch.tensor([[3], [0]]))
    assert tokens.shape == (2, 3) and tokens[1].eq(-1).all() and finish.shape == (2, 1)


def test_gate_rejection_is_never_exported_and_fails_the_command(
    tmp_path, tiny_encoder, small_acme, monkeypatch, capsys
):
    environ = tiny_environ(
        tmp_path, tiny_encoder, MME_FACTORY_TRAINING__EMBEDDING__MIN_RECALL_AT_1="1.0"
    )
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    code = main(["train", "--customer", "acme", "--data", str(small_acme), "--kinds", "embedding"])
    assert code == 1
    err = capsys.readouterr().err
    assert "embedding rejected by the quality gate" in err and "minimum 1.0000" in err
    run = next((tmp_path / "state" / "runs" / "acme").iterdir())
    assert json.loads((run / "embedding" / "metadata.json").read_text())["status"] == "rejected"
    assert not list((run / "embedding").rglob("model.pt"))


def test_golden_set_metrics_go_to_the_run_directory_and_json(
    tmp_path, tiny_encoder, small_acme, monkeypatch
):
    golden = tmp_path / "golden.csv"
    pd.DataFrame(
        {
            "text": [
                "where is my parcel?",
                "I forgot my password",
                "refund please",
                "do you sell boats?",
            ],
            "intent": ["order_status", "reset_password", "refund_request", "boats"],
        }
    ).to_csv(golden, index=False)
    for name, value in tiny_environ(tmp_path, tiny_encoder).items():
        monkeypatch.setenv(name, value)
    out = tmp_path / "metrics.json"
    main(
        [
            "train",
            "--customer",
            "acme",
            "--data",
            str(small_acme),
            "--kinds",
            "classifier",
            "embedding",
            "--test-data",
            str(golden),
            "--metrics-json",
            str(out),
        ]
    )
    metrics = json.loads(out.read_text())
    assert metrics["classifier"]["golden_set"]["examples"] == 4
    assert metrics["classifier"]["golden_set"]["unknown_intents"] == ["boats"]
    assert {"base", "fine_tuned"} <= set(metrics["embedding"]["golden_set"])
    run = next((tmp_path / "state" / "runs" / "acme").iterdir())
    assert (run / "classifier" / "golden_set.json").is_file()


def test_single_intent_data_is_stopped_by_validation(tmp_path, tiny_encoder):
    data = tmp_path / "one"
    data.mkdir()
    (data / "intents.csv").write_text(
        "text,intent\n" + "".join(f"question {i},billing\n" for i in range(40))
    )
    settings = load_settings(environ=tiny_environ(tmp_path, tiny_encoder))
    with pytest.raises(ValidationFailed, match="too_few_intents"):
        train_customer("acme", str(data), settings, [ModelKind.CLASSIFIER])


def test_empty_or_single_intent_frames_are_refused_by_the_trainer():
    with pytest.raises(TrainingDataError, match="missing or empty"):
        check_intents(pd.DataFrame(columns=["text", "intent"]))
    with pytest.raises(TrainingDataError, match="1 intent"):
        check_intents(pd.DataFrame({"text": ["a", "b"], "intent": ["x", "x"]}))


def test_an_intent_with_one_example_stays_in_training_only():
    frame = pd.DataFrame({"text": [f"t{i}" for i in range(11)], "intent": ["a"] * 10 + ["rare"]})
    train, held = split_labelled(frame, "intent", 0.2, seed=1)
    assert "rare" in set(train["intent"]) and "rare" not in set(held["intent"])
    assert len(held) == 2


def test_long_and_non_ascii_texts_are_truncated_not_crashed(tiny_encoder):
    transformer, tokenizer = load_encoder(str(tiny_encoder))
    encoder = SentenceEncoder(transformer)
    texts = ["refund " * 3000, "Zoë a écrit : où est ma commande ? 注文はどこ", ""]
    vectors = embed(encoder, tokenizer, texts, max_length=32)
    assert vectors.shape == (3, 32)
    assert torch.allclose(vectors.norm(dim=1)[:2], torch.ones(2), atol=1e-5)


def test_missing_base_model_path_is_a_clear_error(tmp_path):
    with pytest.raises(BaseModelNotFound, match=r"no config\.json"):
        load_encoder(str(tmp_path / "no-such-model"))


def test_parity_check_fails_loudly_when_outputs_differ():
    class Shifted(torch.nn.Module):
        def forward(self, input_ids, attention_mask):
            return torch.zeros(input_ids.shape) + 1e-3

    class Plain(torch.nn.Module):
        def forward(self, input_ids, attention_mask):
            return torch.zeros(input_ids.shape)

    batches = parity_batches(vocab_size=2000, max_length=16)
    assert check_parity("same", Plain(), Plain(), batches, 1e-4) == 0.0
    with pytest.raises(ExportParityError, match=r"differs from eager by 1\.00e-03"):
        check_parity("shifted", Plain(), Shifted(), batches, 1e-4)


def test_invalid_customer_id_is_refused(tmp_path, tiny_encoder):
    settings = load_settings(environ=tiny_environ(tmp_path, tiny_encoder))
    with pytest.raises(ValueError, match="invalid customer id"):
        train_customer("../acme", str(ACME), settings, [ModelKind.CLASSIFIER])


def test_same_seed_gives_the_same_model(tmp_path, tiny_encoder, small_acme):
    from tasks.data.training_data import load_dataset
    from tasks.training.classifier import finetune_classifier
    from tasks.training.reproducibility import seed_everything

    settings = load_settings(environ=tiny_environ(tmp_path, tiny_encoder))
    data = load_dataset(str(small_acme), settings)
    runs = []
    for _ in range(2):
        seed_everything(settings.training.seed)
        model = finetune_classifier(data, settings.training.classifier, 0.2, settings.training.seed)
        runs.append(
            (
                model.metrics["fine_tuned"]["accuracy"],
                model.final_loss,
                model.classifier.head.weight.detach().clone(),
            )
        )
    assert runs[0][:2] == runs[1][:2]
    assert torch.equal(runs[0][2], runs[1][2])
