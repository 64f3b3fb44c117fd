"""Capacity arithmetic, the instance catalog and the plan's inputs (no server needed)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cli.main import main
from planner.capacity import (
    CapacityError,
    KindFootprint,
    plan_customers,
    plan_kind,
    targets_per_instance,
)
from planner.instance_catalog import CatalogError, load_catalog
from planner.plan_inputs import PlanInputError, footprint_argument, tarball_argument

CATALOG = load_catalog()
G4DN = CATALOG.get("ml.g4dn.xlarge")
C5 = CATALOG.get("ml.c5.2xlarge")
GIB_IN_MIB = 1024


def embedding(memory_mib: float) -> KindFootprint:
    return KindFootprint("embedding", targets_per_customer=2, memory_mib=memory_mib)


def test_published_case_twelve_embedding_models_per_g4dn_xlarge_at_80_percent() -> None:
    # 16 GiB of T4 memory at 80 % holds 24 encoders of about 0.53 GiB: 12 two-encoder models.
    per_encoder = 16 * GIB_IN_MIB * 0.8 / 24
    plan = plan_kind(embedding(per_encoder), G4DN, CATALOG, customers=12)
    assert (plan.targets_per_instance, plan.customers_per_instance) == (24, 12)
    assert plan.instances == 1
    assert plan.bound_by == "GPU memory"
    one_more_mib = plan_kind(embedding(per_encoder + 1), G4DN, CATALOG, customers=12)
    assert (one_more_mib.targets_per_instance, one_more_mib.customers_per_instance) == (23, 11)
    assert one_more_mib.instances == 2


def test_half_gib_encoders_still_pack_twelve_whole_models() -> None:
    plan = plan_kind(embedding(0.5 * GIB_IN_MIB), G4DN, CATALOG, customers=1)
    assert plan.targets_per_instance == 25
    assert plan.customers_per_instance == 12


def test_instances_round_up_and_cost_is_priced_per_month() -> None:
    plan = plan_kind(embedding(1024), C5, CATALOG, customers=100)
    assert plan.targets_per_instance == 12  # 16 GiB * 0.8 / 1 GiB
    assert plan.instances == 17  # ceil(200 / 12)
    assert plan.mme_monthly == pytest.approx(17 * 0.408 * 730)
    assert plan.single_model_monthly == pytest.approx(100 * 0.408 * 730)
    assert plan.saving == pytest.approx(1 - 17 / 100)


def test_replicas_load_every_model_on_that_many_instances() -> None:
    plan = plan_kind(embedding(1024), C5, CATALOG, customers=3, replicas=3)
    assert plan.instances == 3  # 18 copies fit on 2 instances, but 3 replicas need 3
    plan = plan_kind(embedding(1024), C5, CATALOG, customers=100, replicas=3)
    assert plan.instances == 50  # ceil(600 / 12)
    assert plan.single_model_monthly == pytest.approx(300 * 0.408 * 730)


def test_host_overhead_bounds_python_backend_models_on_gpu_instances() -> None:
    footprint = KindFootprint("autocomplete", 1, memory_mib=292, host_overhead_mib=3000)
    fit = targets_per_instance(G4DN, footprint, 0.8)
    assert (fit.targets_per_instance, fit.bound_by) == (4, "host memory")
    wider = targets_per_instance(CATALOG.get("ml.g4dn.2xlarge"), footprint, 0.8)
    assert wider.targets_per_instance == 8


def test_a_model_larger_than_the_instance_is_refused() -> None:
    with pytest.raises(CapacityError, match="does not fit in 80% of host memory"):
        targets_per_instance(C5, embedding(20 * GIB_IN_MIB), 0.8)


def test_total_is_the_sum_of_the_kinds() -> None:
    footprints = [embedding(400), KindFootprint("classifier", 1, 430)]
    plan = plan_customers(footprints, G4DN, CATALOG, customers=1000)
    assert plan.instances == sum(kind.instances for kind in plan.kinds)
    assert 0 < plan.saving < 1
    assert json.dumps(plan.to_dict())


def test_shipped_catalog_says_where_its_prices_come_from() -> None:
    assert CATALOG.source and CATALOG.retrieved and CATALOG.region
    assert G4DN.gpu_memory_gib == 16 and not C5.has_gpu


def test_unknown_instance_type_lists_the_known_ones() -> None:
    with pytest.raises(CatalogError, match=r"ml\.c5\.2xlarge, ml\.g4dn\.2xlarge"):
        CATALOG.get("ml.p99.huge")


def test_malformed_catalog_names_the_field(tmp_path: Path) -> None:
    path = tmp_path / "types.yaml"
    path.write_text(
        "source: s\nretrieved: '2026-01-01'\nregion: us-east-1\n"
        "instance_types:\n  ml.x:\n    vcpus: 4\n    memory_gib: 16\n    gpu: T4\n"
        "    price_per_hour: 1\n",
        encoding="utf-8",
    )
    with pytest.raises(CatalogError, match="gpu_memory_gib"):
        load_catalog(path)


def test_tarball_kind_comes_from_its_target_model_key(tmp_path: Path) -> None:
    tarball = tmp_path / "acme" / "embedding-query" / "v3.tar.gz"
    tarball.parent.mkdir(parents=True)
    tarball.write_bytes(b"x")
    assert tarball_argument(str(tarball)).kind == "embedding"
    assert tarball_argument(f"classifier={tarball}").kind == "classifier"
    with pytest.raises(PlanInputError, match="KIND=PATH"):
        tarball_argument(str(tmp_path / "model.tar.gz"))


def test_footprint_argument_needs_kind_and_positive_mib() -> None:
    assert footprint_argument("embedding=512").targets_per_customer == 2
    for bad in ("embedding", "embedding=-3", "vision=10"):
        with pytest.raises(PlanInputError, match="KIND=MIB"):
            footprint_argument(bad)


def test_plan_command_from_given_footprints(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        [
            "plan",
            "--footprint",
            "embedding=512",
            "--footprint",
            "autocomplete=300",
            "--customers",
            "100,1000",
            "--json",
        ]
    )
    assert code == 0
    document = json.loads(capsys.readouterr().out)
    assert document["measured"] is None
    assert document["production_estimate"] is None
    assert [(p["instance_type"], p["customers"]) for p in document["plans"]] == [
        ("ml.g4dn.xlarge", 100),
        ("ml.g4dn.xlarge", 1000),
        ("ml.c5.2xlarge", 100),
        ("ml.c5.2xlarge", 1000),
    ]
    assert document["catalog"]["retrieved"]


def test_plan_command_reports_a_model_that_fits_nowhere(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = main(["plan", "--footprint", "classifier=900000", "--instance-type", "ml.c5.2xlarge"])
    assert code == 1
    assert "does not fit" in capsys.readouterr().err
