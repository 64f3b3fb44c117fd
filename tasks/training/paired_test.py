"""Is one model worse than another on the same examples by more than chance?

Both tests compare per-example scores of two models on the same examples (1.0 right, 0.0
wrong): McNemar's exact test counts the examples only one of them got right; the paired
bootstrap resamples the examples and looks at the spread of the difference in means.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

import numpy as np

BOOTSTRAP_SEED = 20_240_601


class PairedTest(StrEnum):
    MCNEMAR = "mcnemar"
    BOOTSTRAP = "paired_bootstrap"


@dataclass(frozen=True)
class PairedComparison:
    """The challenger minus the champion on the same examples, with its uncertainty."""

    test: PairedTest
    examples: int
    champion_mean: float
    challenger_mean: float
    ci_low: float  # of the difference, at the comparison's confidence
    ci_high: float
    p_worse: float  # one-sided: how likely a difference this low is when the two are equal
    p_better: float  # one-sided, the other way

    @property
    def difference(self) -> float:
        return self.challenger_mean - self.champion_mean


def binomial_tail(successes: int, trials: int) -> float:
    """P(X >= successes) for X ~ Binomial(trials, 1/2), exactly."""
    if successes <= 0:
        return 1.0
    tail = sum(math.comb(trials, k) for k in range(successes, trials + 1))
    return min(1.0, tail / 2**trials)


def _checked(champion: Sequence[float], challenger: Sequence[float]) -> tuple[np.ndarray, ...]:
    if len(champion) != len(challenger):
        raise ValueError(f"{len(champion)} champion scores against {len(challenger)}")
    if not champion:
        raise ValueError("no examples to compare on")
    return np.asarray(champion, dtype=float), np.asarray(challenger, dtype=float)


def _bootstrap_differences(
    champion: np.ndarray, challenger: np.ndarray, samples: int, seed: int
) -> np.ndarray:
    rng = np.random.default_rng(seed)
    differences = challenger - champion
    picks = rng.integers(0, len(differences), size=(samples, len(differences)))
    return differences[picks].mean(axis=1)


def _compared(
    test: PairedTest,
    before: np.ndarray,
    after: np.ndarray,
    resampled: np.ndarray,
    significance: float,
    p_values: tuple[float, float],
) -> PairedComparison:
    low, high = np.quantile(resampled, [significance / 2, 1 - significance / 2])
    p_worse, p_better = p_values
    return PairedComparison(
        test,
        len(before),
        float(before.mean()),
        float(after.mean()),
        float(low),
        float(high),
        p_worse,
        p_better,
    )


def mcnemar(
    champion: Sequence[float],
    challenger: Sequence[float],
    significance: float,
    samples: int = 2_000,
    seed: int = BOOTSTRAP_SEED,
) -> PairedComparison:
    """McNemar's exact test on right/wrong scores; the interval comes from the bootstrap."""
    before, after = _checked(champion, challenger)
    only_champion = int(((before > 0.5) & (after <= 0.5)).sum())
    only_challenger = int(((before <= 0.5) & (after > 0.5)).sum())
    discordant = only_champion + only_challenger
    p_values = binomial_tail(only_champion, discordant), binomial_tail(only_challenger, discordant)
    resampled = _bootstrap_differences(before, after, samples, seed)
    return _compared(PairedTest.MCNEMAR, before, after, resampled, significance, p_values)


def paired_bootstrap(
    champion: Sequence[float],
    challenger: Sequence[float],
    significance: float,
    samples: int = 2_000,
    seed: int = BOOTSTRAP_SEED,
) -> PairedComparison:
    """The paired bootstrap: p is the share of resampled differences on the other side of 0."""
    before, after = _checked(champion, challenger)
    resampled = _bootstrap_differences(before, after, samples, seed)
    p_values = (
        float((np.count_nonzero(resampled >= 0) + 1) / (samples + 1)),
        float((np.count_nonzero(resampled <= 0) + 1) / (samples + 1)),
    )
    return _compared(PairedTest.BOOTSTRAP, before, after, resampled, significance, p_values)


PAIRED_TESTS = {PairedTest.MCNEMAR: mcnemar, PairedTest.BOOTSTRAP: paired_bootstrap}
