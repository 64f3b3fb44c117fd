"""Which TargetModels the warm-up calls when an endpoint cannot hold them all."""

from __future__ import annotations

import pytest

from mme_factory.capacity import instances_needed, models_per_instance
from mme_factory.manifest import RegisteredTarget
from tasks.deployment.warmup.endpoint_usage import EndpointUsage, ModelUsage
from tasks.deployment.warmup.warmup_capacity import (
    MIB,
    TARBALL_FOOTPRINT_FACTOR,
    footprints,
    plan_endpoint,
)

ENDPOINT = "dev-mme-classifier"


def targets(*customers: str) -> list[RegisteredTarget]:
    return [
        RegisteredTarget(c, "classifier", ENDPOINT, f"{c}/classifier/v1.tar.gz") for c in customers
    ]


def key(customer: str) -> str:
    return f"{customer}/classifier/v1.tar.gz"


def usage(
    budget_mib: int, models: dict[str, ModelUsage], reserved_mib: int = 0, instances: int = 1
) -> EndpointUsage:
    return EndpointUsage(
        endpoint=ENDPOINT,
        source="mme_local",
        budget_bytes=budget_mib * MIB,
        reserved_bytes=reserved_mib * MIB,
        instances=instances,
        models={key(c): m for c, m in models.items()},
    )


def measured(
    mib: int, loaded: bool = False, calls: int = 0, last: float | None = None
) -> ModelUsage:
    return ModelUsage(mib * MIB, loaded, calls, last)


def names(models: list) -> list[str]:
    return [m.target.customer for m in models]


def test_everything_that_fits_is_warmed_and_nothing_is_short() -> None:
    plan = plan_endpoint(
        usage(1000, {c: measured(100) for c in "abcd"}, reserved_mib=100), targets(*"abcd"), {}
    )
    assert names(plan.warm) == list("abcd")
    assert plan.over_capacity == []
    assert plan.shortfall() is None


def test_what_does_not_fit_is_over_capacity() -> None:
    plan = plan_endpoint(
        usage(450, {c: measured(100) for c in "abcdef"}, reserved_mib=150), targets(*"abcdef"), {}
    )
    assert names(plan.warm) == list("abc")
    assert names(plan.over_capacity) == list("def")


def test_busiest_models_are_warmed_first() -> None:
    models = {
        "a": measured(100),
        "b": measured(100, calls=3),
        "c": measured(100, calls=9),
        "d": measured(100, last=2_000.0),
        "e": measured(100, calls=3, last=1_000.0),
    }
    plan = plan_endpoint(usage(300, models), targets(*"abcde"), {})
    # c most calls; e and b tie on calls and e was called later
    assert names(plan.warm) == ["c", "e", "b"]
    assert names(plan.over_capacity) == ["d", "a"]


def test_loaded_models_with_traffic_are_never_evicted_for_busier_or_colder_ones() -> None:
    models = {
        "cold": measured(100),
        "busy": measured(100, loaded=True, calls=1),
        "busier": measured(100, calls=50),
        "idle": measured(100, loaded=True),
    }
    plan = plan_endpoint(usage(200, models), targets("cold", "busy", "busier", "idle"), {})
    assert names(plan.warm) == ["busy", "busier"]
    assert names(plan.over_capacity) == ["idle", "cold"]


def test_loaded_busy_models_are_kept_even_beyond_capacity() -> None:
    models = {c: measured(100, loaded=True, calls=1) for c in "abc"} | {"d": measured(10)}
    plan = plan_endpoint(usage(250, models), targets(*"abcd"), {})
    assert names(plan.warm) == list("abc")
    assert names(plan.over_capacity) == ["d"]


def test_loaded_models_are_called_before_the_ones_to_load() -> None:
    models = {"a": measured(100, calls=5), "b": measured(100, loaded=True), "c": measured(100)}
    plan = plan_endpoint(usage(1000, models), targets(*"abc"), {})
    assert names(plan.warm) == ["b", "a", "c"]


def test_idle_loaded_models_stay_the_warm_set_from_one_pass_to_the_next() -> None:
    models = {c: measured(100, loaded=c in "de") for c in "abcde"}
    plan = plan_endpoint(usage(200, models), targets(*"abcde"), {})
    assert names(plan.warm) == ["d", "e"]


def test_a_never_measured_model_is_its_tarball_times_the_ratio_measured_on_its_endpoint() -> None:
    sizes = {key("a"): 2 * MIB, key("b"): 4 * MIB}
    planned = footprints(usage(1000, {"a": measured(300)}), targets("a", "b"), sizes)
    assert [(m.footprint_bytes, m.footprint_source) for m in planned] == [
        (300 * MIB, "measured"),
        (600 * MIB, "tarball x 150.0"),
    ]


def test_with_nothing_measured_the_tarball_factor_is_the_default() -> None:
    planned = footprints(usage(1000, {}), targets("a"), {key("a"): 80 * MIB})
    assert planned[0].footprint_bytes == int(80 * MIB * TARBALL_FOOTPRINT_FACTOR)
    assert planned[0].footprint_source == f"tarball x {TARBALL_FOOTPRINT_FACTOR:.1f}"


def test_an_endpoint_mean_stands_in_for_unmeasured_models() -> None:
    endpoint = EndpointUsage(ENDPOINT, "cloudwatch", 1000 * MIB, mean_footprint_bytes=250 * MIB)
    planned = footprints(endpoint, targets("a"), {key("a"): MIB})
    assert (planned[0].footprint_bytes, planned[0].footprint_source) == (
        250 * MIB,
        "endpoint mean",
    )


def test_the_shortfall_names_the_instances_needed_and_the_models_left_out() -> None:
    models = {c: measured(100) for c in "abcdef"} | {"g": measured(120)}
    plan = plan_endpoint(usage(400, models, reserved_mib=100), targets(*"abcdefg"), {})
    message = plan.shortfall()
    assert message is not None
    # 300 MiB usable, sized by the largest (120 MiB): 2 per instance, 7 models: 4 instances
    assert plan.instances_needed == 4
    assert message.startswith(f"{ENDPOINT}: 7 TargetModels need 4 instances, it has 1: 2 of up")
    assert "300 MiB an instance has for models (400 MiB budget less 100 MiB" in message
    assert f"4 over capacity, not warmed: {key('d')}, {key('e')}, {key('f')}, {key('g')}" in message
    assert "Run it on 4 instances" in message


def test_more_instances_hold_more_models() -> None:
    models = {c: measured(100) for c in "abcdef"}
    plan = plan_endpoint(usage(300, models, instances=2), targets(*"abcdef"), {})
    assert len(plan.warm) == 6
    assert plan.shortfall() is None


def test_a_model_larger_than_an_instance_says_so() -> None:
    plan = plan_endpoint(usage(300, {"a": measured(500)}, reserved_mib=100), targets("a"), {})
    assert plan.instances_needed is None
    assert "one TargetModel of 500 MiB does not fit in the 200 MiB" in (plan.shortfall() or "")


@pytest.mark.parametrize(
    ("models", "per_instance", "replicas", "expected"),
    [(7, 2, 1, 4), (4, 2, 1, 2), (1, 5, 3, 3), (10, 4, 2, 5)],
)
def test_instances_needed(models: int, per_instance: int, replicas: int, expected: int) -> None:
    assert instances_needed(models, per_instance, replicas) == expected


def test_models_per_instance_is_whole_models() -> None:
    assert models_per_instance(299.9, 100) == 2
    assert models_per_instance(-5, 100) == 0
    with pytest.raises(ValueError, match="positive"):
        models_per_instance(100, 0)
