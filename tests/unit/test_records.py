"""The records stages hand each other read what the writers write and keep what they do not know."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mme_factory.manifest import read_manifest
from mme_factory.records import (
    ClassifierExport,
    EmbeddingExport,
    ExportRecord,
    ManifestEntry,
    RunRecord,
    Tombstone,
    TrainingStatus,
    UnreadableRecord,
)
from mme_factory.store import LocalStore
from tasks.deployment.publish.promote import promote


def test_a_manifest_keeps_unknown_fields_through_a_promotion(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    entry = {"endpoint": "dev-mme-classifier", "version": 1, "targets": {}, "note": "by hand"}
    written = {"customer": "acme", "models": {"classifier": entry}, "owner": "team-a"}
    store.write_bytes("registry/acme.json", json.dumps(written).encode())

    promote(store, "acme", {"classifier": ManifestEntry(endpoint="dev-mme-classifier", version=2)})

    document = json.loads(store.read_bytes("registry/acme.json"))
    assert document["owner"] == "team-a"
    assert document["history"]["classifier"] == [entry]
    assert document["models"]["classifier"] == {"endpoint": "dev-mme-classifier", "version": 2}
    assert read_manifest(store, "acme").models["classifier"].version == 2


def test_a_run_record_is_written_back_as_it_was_read(tmp_path: Path) -> None:
    record = {
        "customer": "acme",
        "run_id": "r1",
        "data_uri": "/data/acme",
        "kinds": {"classifier": {"status": "exported", "timings": {"total_s": 1.5}}},
        "written_by": "an older release",
    }
    text = json.dumps(record, indent=2, sort_keys=True) + "\n"
    (tmp_path / "run.json").write_text(text, encoding="utf-8")

    read = RunRecord.read(tmp_path)
    assert read.kinds["classifier"].status == TrainingStatus.EXPORTED
    read.write(tmp_path)
    assert (tmp_path / "run.json").read_text(encoding="utf-8") == text


def test_an_export_reads_as_the_kind_it_names(tmp_path: Path) -> None:
    EmbeddingExport(kind="embedding", role="query", max_length=16, dim=32).write(tmp_path)
    export = ExportRecord.read(tmp_path)
    assert isinstance(export, EmbeddingExport) and export.dim == 32
    with pytest.raises(UnreadableRecord, match=r"export\.json"):
        ClassifierExport.read(tmp_path)


def test_a_tombstone_needs_an_integer_highest_version() -> None:
    with pytest.raises(UnreadableRecord, match="highest_version"):
        Tombstone.from_json(b'{"customer": "acme", "offboarded": true, "highest_version": "3"}')
    tombstone = Tombstone(customer="acme", offboarded_at="2026-01-05", highest_version=3)
    assert json.loads(tombstone.to_json()) == {
        "customer": "acme",
        "offboarded": True,
        "offboarded_at": "2026-01-05",
        "highest_version": 3,
    }
