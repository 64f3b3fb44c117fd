"""The gate's decisions: the challenger against its champion, ties, fallbacks, minimums."""

from __future__ import annotations

from mme_factory.model_kinds import ModelKind
from mme_factory.records import GateDecision
from mme_factory.settings.training import TrainingSettings
from tasks.training.quality_gate import Champion, Contest, judge

SETTINGS = TrainingSettings()
RIGHT_720 = [1.0] * 711 + [0.0] * 9  # 98.75 % of 720, as both models of the issue scored


def classifier_metrics(base: float, tuned: float) -> dict[str, dict[str, object]]:
    return {"base": {"accuracy": base}, "fine_tuned": {"accuracy": tuned}}


def live(version: int = 3) -> Champion:
    return Champion(version, fingerprint=None, evidence=None)


def test_a_tie_with_the_base_on_a_first_onboarding_serves_the_fine_tuned_model():
    contest = Contest("base", RIGHT_720, RIGHT_720)
    gate = judge(
        ModelKind.CLASSIFIER, classifier_metrics(0.9875, 0.9875), contest, SETTINGS, None, True
    )
    assert gate.decision == GateDecision.CHALLENGER and gate.passed
    assert gate.comparison is not None and gate.comparison.outcome == "tie"
    assert gate.comparison.examples == 720 and gate.comparison.difference == 0.0
    assert "a tie" in gate.reason
    assert "newer data, settings or code than base, so it is served" in gate.reason


def test_a_significant_loss_to_the_base_serves_the_base_model():
    base = [1.0] * 100
    tuned = [0.0] * 20 + [1.0] * 80
    gate = judge(
        ModelKind.CLASSIFIER,
        classifier_metrics(1.0, 0.8),
        Contest("base", base, tuned),
        SETTINGS,
        None,
        True,
    )
    assert gate.decision == GateDecision.BASELINE and gate.passed
    assert gate.comparison is not None and gate.comparison.outcome == "worse"
    assert gate.comparison.p_worse < 0.05 and gate.comparison.ci_high < 0
    assert "the base model reaches the minimums and is served instead" in gate.reason
    assert [(c.model, c.passed) for c in gate.minimums] == [("fine_tuned", True), ("base", True)]


def test_nothing_is_served_when_no_candidate_reaches_the_minimum():
    settings = TrainingSettings.model_validate({"classifier": {"min_accuracy": 0.95}})
    scores = [1.0] * 90 + [0.0] * 10
    gate = judge(
        ModelKind.CLASSIFIER,
        classifier_metrics(0.9, 0.9),
        Contest("base", scores, scores),
        settings,
        None,
        True,
    )
    assert gate.decision == GateDecision.REJECTED and not gate.passed
    assert "accuracy 0.9000 < minimum 0.9500" in gate.reason
    assert "nothing is served for classifier" in gate.reason


def test_a_retrain_worse_than_the_live_version_by_more_than_chance_keeps_the_live_version():
    champion = [1.0] * 300
    challenger = [0.0] * 15 + [1.0] * 285
    gate = judge(
        ModelKind.CLASSIFIER,
        classifier_metrics(0.97, 0.95),
        Contest("v3", champion, challenger),
        SETTINGS,
        live(3),
        True,
    )
    assert gate.decision == GateDecision.CHAMPION and not gate.passed
    assert gate.champion_version == 3
    assert gate.comparison is not None and gate.comparison.champion == "v3"
    assert "worse by more than chance" in gate.reason and "v3 stays live" in gate.reason


def test_a_small_loss_within_chance_is_a_tie_that_newer_data_wins():
    champion = [1.0] * 300
    challenger = [0.0] * 2 + [1.0] * 298
    contest = Contest("v3", champion, challenger)
    metrics = classifier_metrics(0.97, 0.97)
    newer = judge(ModelKind.CLASSIFIER, metrics, contest, SETTINGS, live(3), True)
    assert newer.decision == GateDecision.CHALLENGER
    same = judge(ModelKind.CLASSIFIER, metrics, contest, SETTINGS, live(3), False)
    assert same.decision == GateDecision.CHAMPION
    assert "a tie with v3, trained on the same data" in same.reason


def test_the_significance_is_a_setting():
    champion = [1.0] * 300
    challenger = [0.0] * 5 + [1.0] * 295  # McNemar p = 1/32 for the loss
    contest = Contest("v3", champion, challenger)
    metrics = classifier_metrics(0.97, 0.97)
    at_5 = judge(ModelKind.CLASSIFIER, metrics, contest, SETTINGS, live(3), True)
    strict = TrainingSettings(gate_significance=0.01)
    at_1 = judge(ModelKind.CLASSIFIER, metrics, contest, strict, live(3), True)
    assert (at_5.decision, at_1.decision) == (GateDecision.CHAMPION, GateDecision.CHALLENGER)


def test_a_better_challenger_is_served_even_on_the_same_data():
    champion = [0.0] * 40 + [1.0] * 260
    challenger = [1.0] * 300
    gate = judge(
        ModelKind.CLASSIFIER,
        classifier_metrics(0.87, 1.0),
        Contest("v3", champion, challenger),
        SETTINGS,
        live(3),
        False,
    )
    assert gate.decision == GateDecision.CHALLENGER and gate.comparison is not None
    assert gate.comparison.outcome == "better" and "better:" in gate.reason


def test_autocomplete_worse_than_unigram_is_still_served_when_it_reaches_its_minimum():
    unigram = [1.0] * 120 + [0.0] * 180
    tuned = [1.0] * 80 + [0.0] * 220
    metrics = {
        "unigram": {"next_word_accuracy": 0.4},
        "fine_tuned": {"next_word_accuracy": 80 / 300},
    }
    contest = Contest("unigram", unigram, tuned)
    gate = judge(ModelKind.AUTOCOMPLETE, metrics, contest, SETTINGS, None, True)
    assert gate.decision == GateDecision.CHALLENGER
    assert gate.comparison is not None and gate.comparison.test == "paired_bootstrap"
    assert "a unigram model cannot be served" in gate.reason
    below = TrainingSettings.model_validate({"autocomplete": {"min_next_word_accuracy": 0.3}})
    rejected = judge(ModelKind.AUTOCOMPLETE, metrics, contest, below, None, True)
    assert rejected.decision == GateDecision.REJECTED
