"""Benchmark: the publish race, long: two onboardings and an offboarding, many rounds.

    .venv/bin/python bench/bench_publish_race.py [--rounds 50] [--seed N] [--unfenced]

Each round (test_support/publish_race.py) starts two onboardings and an offboarding of one
customer with random delays, stalls longer than the lock's stale limit with the stalled run's
heartbeat partitioned off, and wall clocks skewed by up to ten minutes; then checks that at most
one run wrote the manifest at a time, that every manifest written pointed at existing tarballs,
and that the offboarded customer holds nothing. Prints how the rounds ended; writes JSON under
bench/results/; exits 1 when any round broke an invariant. `--unfenced` turns the fence's
checks off, to show that the invariants catch what fencing prevents.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
from collections import Counter
from dataclasses import asdict
from pathlib import Path

from bench_report import print_table, write_results

from mme_factory.lease_fence import Fence
from test_support.publish_race import RaceOptions, RoundResult, run_round

REPO = Path(__file__).resolve().parent.parent


def ending(outcome: str) -> str:
    """An outcome without its details: `promoted`, `LeaseLost`, `offboarded` ..."""
    return outcome.split(":", 1)[0].split(";", 1)[0]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=50)
    parser.add_argument("--seed", type=int, default=None, help="first round's seed (random)")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results")
    parser.add_argument("--unfenced", action="store_true", help="turn the fence's checks off")
    args = parser.parse_args()
    if args.unfenced:
        Fence.confirm = lambda *_: None  # type: ignore[method-assign]
        Fence.refuse_older_than = lambda *_: None  # type: ignore[method-assign]
    first = args.seed if args.seed is not None else random.randrange(1_000_000)
    options = RaceOptions()
    results: list[RoundResult] = []
    for seed in range(first, first + args.rounds):
        with tempfile.TemporaryDirectory() as root:
            result = run_round(Path(root), seed, options)
        results.append(result)
        status = "ok" if not result.violations else "; ".join(result.violations)
        print(f"seed {seed}: {result.seconds:.1f} s, {result.stalls} stalls: {status}")
    onboardings = Counter(
        ending(how) for r in results for who, how in r.outcomes.items() if who != "offboarding"
    )
    offboardings = Counter(ending(r.outcomes.get("offboarding", "missing")) for r in results)
    broken = [r for r in results if r.violations]
    print()
    print_table(
        [
            ("rounds", f"{len(results)} (seeds {first}..{first + args.rounds - 1})"),
            ("rounds that broke an invariant", str(len(broken))),
            ("stalls (lock taken over meanwhile)", str(sum(r.stalls for r in results))),
            ("manifest writes checked", str(sum(r.manifest_writes for r in results))),
            ("onboardings ended", ", ".join(f"{k} {v}" for k, v in onboardings.most_common())),
            ("offboardings ended", ", ".join(f"{k} {v}" for k, v in offboardings.most_common())),
            ("wall time", f"{sum(r.seconds for r in results):.0f} s"),
        ]
    )
    path = write_results(
        "publish_race-unfenced" if args.unfenced else "publish_race",
        {
            "first_seed": first,
            "unfenced": args.unfenced,
            "options": asdict(options),
            "rounds": [asdict(r) for r in results],
            "broken": len(broken),
        },
        args.out,
    )
    print(f"\nwritten: {path}")
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
