"""The champion a kind's challenger meets at the gate, and the evidence a served model keeps.

The champion is the customer's live version of the kind, read from its manifest with the
evidence promote kept beside it; without a live version (or without its evidence) the gate
compares with the kind's baseline on the run's own held-out examples.
"""

from __future__ import annotations

from collections.abc import Callable

from mme_factory.errors import MmeFactoryError
from mme_factory.manifest import read_manifest
from mme_factory.model_kinds import ModelKind, describe
from mme_factory.records import (
    GateDecision,
    GateEvidence,
    TrainingFingerprint,
)
from mme_factory.settings import Settings
from mme_factory.store import open_store
from tasks.training.held_out import MAX_EVIDENCE_EXAMPLES, HeldOutScores
from tasks.training.quality_gate import Champion, Contest


class ChampionUnreadable(MmeFactoryError):
    """The live version's gate evidence is named by the manifest but cannot be read."""


def live_champion(settings: Settings, customer: str, kind: ModelKind) -> Champion | None:
    """The customer's live version of `kind`; None when nothing of it is live."""
    store = open_store(settings.store, settings)
    entry = read_manifest(store, customer, tombstone_as_empty=True).models.get(kind.value)
    if entry is None or entry.version is None:
        return None
    evidence = None
    if entry.gate_evidence is not None:
        try:
            evidence = GateEvidence.from_json(store.read_bytes(entry.gate_evidence))
        except MmeFactoryError as error:  # unreadable JSON or record, or a store error
            raise ChampionUnreadable(
                f"the gate evidence of {customer}'s live {kind} v{entry.version} "
                f"({store.uri(entry.gate_evidence)}) cannot be read: {error}"
            ) from None
    return Champion(entry.version, entry.training_fingerprint, evidence)


def trained_on_newer(champion: Champion | None, challenger: TrainingFingerprint | None) -> bool:
    """Whether the challenger learnt from something its champion did not: data, training
    settings or serving code. Unknown fingerprints count as newer."""
    if champion is None or champion.fingerprint is None or challenger is None:
        return True
    return champion.fingerprint != challenger


def excluded_rows(champion: Champion | None) -> set[str]:
    """The training rows the champion's evidence examples came from: the challenger skips them."""
    if champion is None or champion.evidence is None:
        return set()
    return {example["row"] for example in champion.evidence.examples if "row" in example}


def usable(evidence: GateEvidence, held: HeldOutScores) -> bool:
    return bool(evidence.examples) and evidence.metric == held.metric


def contest_for(
    kind: ModelKind,
    held: HeldOutScores,
    champion: Champion | None,
    score_examples: Callable[[list[dict[str, str]]], list[float]],
) -> Contest:
    """The champion's scores against the challenger's, example by example.

    Against a live version with evidence the challenger is scored on that evidence's examples
    (`score_examples(examples)`); otherwise both are the run's held-out scores.
    """
    evidence = champion.evidence if champion is not None else None
    if champion is not None and evidence is not None and usable(evidence, held):
        challenger = score_examples(evidence.examples)
        return Contest(champion.name, evidence.scores, challenger)
    baseline = describe(kind).baseline
    return Contest(baseline, held.scores[baseline], held.scores["fine_tuned"])


def served_evidence(
    kind: ModelKind,
    held: HeldOutScores,
    decision: GateDecision,
    data_sha256: str,
) -> GateEvidence:
    """How the model this run serves scored on its own held-out examples.

    Only those: the next challenger trains without them, and evidence that carried earlier
    champions' examples forward would take more of the data out of every later training.
    """
    model = "fine_tuned" if decision == GateDecision.CHALLENGER else describe(kind).baseline
    examples, scores = list(held.examples), list(held.scores[model])
    return GateEvidence(
        kind=kind.value,
        metric=held.metric,
        model=model,
        data_sha256=data_sha256,
        examples=examples[:MAX_EVIDENCE_EXAMPLES],
        scores=scores[:MAX_EVIDENCE_EXAMPLES],
    )
