"""The fleet's run loop: at most `concurrency` runs at once, and no run's fate stops another."""

from __future__ import annotations

from typing import Any

from tasks.fleet.child_runs import NOT_STARTED, TIMED_OUT, RunState, run_children


class ScriptedRuns:
    """Runs that finish after a given number of polls, with a given final state."""

    def __init__(self, script: dict[str, tuple[int, str]], refuse: set[str] = frozenset()):
        self.script, self.refuse = script, refuse
        self.polls: dict[str, int] = {}
        self.running: set[str] = set()
        self.most_at_once = 0
        self.cancelled: list[str] = []

    def check_ready(self) -> None:
        pass

    def start(self, customer: str, parameters: dict[str, Any]) -> str:
        if customer in self.refuse:
            raise RuntimeError(f"cannot start {parameters['customer_id']}")
        self.running.add(customer)
        self.most_at_once = max(self.most_at_once, len(self.running))
        self.polls[customer] = 0
        return customer

    def state(self, run_id: str) -> RunState:
        self.polls[run_id] += 1
        polls, final = self.script[run_id]
        if self.polls[run_id] < polls:
            return RunState(False, "RUNNING", "")
        self.running.discard(run_id)
        return RunState(True, final, "boom" if final == "FAILED" else "")

    def cancel(self, run_id: str, reason: str) -> None:
        self.cancelled.append(run_id)
        self.running.discard(run_id)


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def requests(*customers: str) -> list[tuple[str, dict[str, Any]]]:
    return [(c, {"customer_id": c}) for c in customers]


def test_no_more_runs_than_the_concurrency_are_in_flight():
    runs = ScriptedRuns({c: (3 + i, "COMPLETED") for i, c in enumerate("abcdef")})
    clock = FakeClock()
    results = run_children(requests(*"abcdef"), runs, 2, 1.0, 100.0, clock, clock.sleep)
    assert runs.most_at_once == 2
    assert {c: r.state for c, r in results.items()} == dict.fromkeys("abcdef", "COMPLETED")


def test_a_failed_run_and_one_that_cannot_start_stop_no_other():
    runs = ScriptedRuns({"a": (1, "FAILED"), "c": (2, "COMPLETED")}, refuse={"b"})
    clock = FakeClock()
    results = run_children(requests("a", "b", "c"), runs, 1, 1.0, 100.0, clock, clock.sleep)
    assert (results["a"].state, results["a"].message) == ("FAILED", "boom")
    assert results["b"].state == NOT_STARTED and "cannot start b" in results["b"].message
    assert results["c"].completed


def test_a_run_past_its_timeout_is_cancelled_and_fails():
    runs = ScriptedRuns({"slow": (1000, "COMPLETED"), "quick": (2, "COMPLETED")})
    clock = FakeClock()
    results = run_children(requests("slow", "quick"), runs, 2, 5.0, 60.0, clock, clock.sleep)
    assert results["slow"].state == TIMED_OUT and "60 s" in results["slow"].message
    assert runs.cancelled == ["slow"]
    assert results["quick"].completed
    assert clock.now <= 70.0
