"""McNemar's exact test and the paired bootstrap on hand-made right/wrong scores."""

from __future__ import annotations

import math

import pytest

from tasks.training.paired_test import binomial_tail, mcnemar, paired_bootstrap


def test_binomial_tail_is_exact():
    assert binomial_tail(0, 5) == 1.0
    assert binomial_tail(5, 5) == pytest.approx(1 / 32)
    assert binomial_tail(4, 5) == pytest.approx(6 / 32)
    assert binomial_tail(1, 0) == 0.0


def test_mcnemar_counts_only_the_examples_one_model_got_right():
    # 10 both right, 8 only the champion right, 0 only the challenger right, 2 both wrong.
    champion = [1.0] * 10 + [1.0] * 8 + [0.0] * 2
    challenger = [1.0] * 10 + [0.0] * 8 + [0.0] * 2
    comparison = mcnemar(champion, challenger, significance=0.05)
    assert comparison.examples == 20
    assert comparison.difference == pytest.approx(-0.4)
    assert comparison.p_worse == pytest.approx(0.5**8)
    assert comparison.p_better == 1.0
    assert comparison.ci_high < 0  # the interval lies wholly below no difference


def test_identical_models_tie_under_both_tests():
    scores = [1.0, 0.0, 1.0, 1.0, 0.0] * 20
    for test in (mcnemar, paired_bootstrap):
        comparison = test(scores, scores, significance=0.05)
        assert comparison.difference == 0.0
        assert comparison.p_worse == 1.0 and comparison.p_better == 1.0
        assert comparison.ci_low == comparison.ci_high == 0.0


def test_bootstrap_sees_a_large_paired_loss_and_not_a_small_one():
    champion = [1.0] * 200
    much_worse = [0.0] * 60 + [1.0] * 140
    slightly_worse = [0.0] * 2 + [1.0] * 198
    loss = paired_bootstrap(champion, much_worse, significance=0.05)
    assert loss.p_worse < 0.01 and loss.ci_high < 0
    assert math.isclose(loss.difference, -0.3)
    small = paired_bootstrap(champion, slightly_worse, significance=0.05)
    assert small.p_worse > 0.05 and small.ci_low < 0 <= small.ci_high


def test_the_bootstrap_is_seeded():
    champion = [1.0, 0.0] * 50
    challenger = [1.0, 1.0, 0.0, 0.0] * 25
    first = paired_bootstrap(champion, challenger, significance=0.05)
    assert paired_bootstrap(champion, challenger, significance=0.05) == first


def test_unpaired_or_empty_scores_are_refused():
    with pytest.raises(ValueError, match="3 champion scores against 2"):
        mcnemar([1.0, 1.0, 0.0], [1.0, 0.0], significance=0.05)
    with pytest.raises(ValueError, match="no examples"):
        paired_bootstrap([], [], significance=0.05)
