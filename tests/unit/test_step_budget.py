"""The training-time budget: steps estimated from the first ones, the total cut to fit."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tasks.training.batching import length_bucketed_batches
from tasks.training.step_budget import StepBudget, budgeted_linear_schedule


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def run_steps(budget: StepBudget, clock: FakeClock, seconds_per_step: float) -> None:
    while not budget.finished:
        clock.now += seconds_per_step
        budget.step_done()


def test_without_a_budget_every_planned_step_runs() -> None:
    clock = FakeClock()
    budget = StepBudget(100, None, 0.0, clock=clock)
    run_steps(budget, clock, 5.0)
    assert budget.summary().to_dict() == {
        "planned": 100,
        "run": 100,
        "budget_s": None,
        "stopped_by_budget": False,
        "stopped_because": None,
    }


def test_a_stop_for_another_reason_ends_the_run_and_is_not_the_budget() -> None:
    clock = FakeClock()
    budget = StepBudget(100, 600.0, 0.0, clock=clock)
    for _ in range(30):
        clock.now += 1.0
        budget.step_done()
    budget.stop("fit")
    assert budget.finished and budget.total == 30
    assert budget.summary().stopped_because == "fit"
    assert not budget.stopped_by_budget


def test_a_stop_after_the_last_planned_step_records_no_reason() -> None:
    clock = FakeClock()
    budget = StepBudget(10, None, 0.0, clock=clock)
    run_steps(budget, clock, 1.0)
    budget.stop("fit")
    assert budget.summary().stopped_because is None


def test_steps_stop_so_that_the_reserve_still_fits() -> None:
    clock = FakeClock()
    clock.now = 10.0  # the base took 10 s to load and evaluate
    budget = StepBudget(1000, 60.0, 0.0, reserve_s=20.0, clock=clock)
    run_steps(budget, clock, 0.5)
    # 30 s of steps fit between t=10 and the deadline at 60 - 20 = 40
    assert budget.stopped_by_budget
    assert 58 <= budget.done <= 61
    assert clock.now <= 40.5


def test_a_budget_larger_than_the_work_changes_nothing() -> None:
    clock = FakeClock()
    budget = StepBudget(40, 600.0, 0.0, reserve_s=5.0, clock=clock)
    run_steps(budget, clock, 1.0)
    assert budget.done == 40
    assert not budget.stopped_by_budget


def test_a_deadline_already_passed_stops_after_one_step() -> None:
    clock = FakeClock()
    clock.now = 100.0
    budget = StepBudget(50, 60.0, 0.0, clock=clock)
    run_steps(budget, clock, 1.0)
    assert budget.done == 1
    assert budget.stopped_by_budget


def test_a_slow_first_step_is_not_taken_as_the_pace() -> None:
    clock = FakeClock()
    budget = StepBudget(100, 100.0, 0.0, clock=clock)
    clock.now += 30.0  # first step: allocations, lazy initialisation
    budget.step_done()
    run_steps(budget, clock, 0.5)
    # 70 s left after the first step at 0.5 s a step: about 140 steps would fit, so all 100 run
    assert budget.done == 100


def test_slow_early_batches_do_not_cut_the_run_short() -> None:
    clock = FakeClock()
    budget = StepBudget(1000, 300.0, 0.0, clock=clock)
    budget.step_done()
    for _ in range(5):  # the longest batches came first
        clock.now += 2.0
        budget.step_done()
    assert budget.total < 200
    run_steps(budget, clock, 0.2)
    # 290 s at 0.2 s a step after those 10 s: the whole plan of 1000 fits after all
    assert budget.done == 1000
    assert not budget.stopped_by_budget


def test_planned_steps_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        StepBudget(0, 10.0, 0.0)


def test_the_schedule_decays_to_zero_at_the_cut_total() -> None:
    clock = FakeClock()
    parameter = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([parameter], lr=1.0)
    budget = StepBudget(1000, 30.0, 0.0, clock=clock)
    schedule = budgeted_linear_schedule(optimizer, budget)
    rates = []
    while not budget.finished:
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        schedule.step()
        clock.now += 1.0
        budget.step_done()
    assert budget.done == 30
    assert max(rates) == pytest.approx(1.0)
    assert rates[-1] < 0.1  # the last step ran near zero, not at the rate a 1000-step plan had


def test_length_bucketed_batches_cover_every_index_once_with_little_padding() -> None:
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 200, size=3000).tolist()
    batches = length_bucketed_batches(lengths, 32, np.random.default_rng(1))
    flat = np.concatenate(batches)
    assert sorted(flat.tolist()) == list(range(3000))
    padded = sum(len(b) * max(lengths[i] for i in b) for b in batches)
    random_order = np.random.default_rng(1).permutation(3000)
    random_padded = sum(
        32 * max(lengths[i] for i in random_order[s : s + 32]) for s in range(0, 3000, 32)
    )
    assert padded < 0.7 * random_padded
    # still shuffled: consecutive batches are not in length order
    means = [np.mean([lengths[i] for i in b]) for b in batches]
    assert means != sorted(means)
