"""Two onboardings and an offboarding of one customer, raced with stalls, partitions and skew.

The short version of `make race` (`bench/bench_publish_race.py`): a few rounds with fixed
seeds, each checking that at most one run writes the manifest at a time, that every manifest
written points at existing tarballs, and that the offboarded customer holds nothing.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from test_support.publish_race import RaceOptions, run_round

ROUNDS = 8


@pytest.mark.parametrize("seed", range(ROUNDS))
def test_a_raced_round_keeps_every_invariant(tmp_path: Path, seed: int) -> None:
    result = run_round(tmp_path, seed, RaceOptions())
    assert not result.violations, (result.outcomes, result.violations)
    assert result.manifest_writes >= 1  # the offboarding's tombstone at least
