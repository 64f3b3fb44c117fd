"""What `mme-factory plan` measures (registered TargetModels, tarballs, or given footprints), and
the peak traffic it plans for."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path, PurePosixPath

from mme_factory.errors import MmeFactoryError
from mme_factory.manifest import registered_targets
from mme_factory.model_kinds import describe, kind_names
from mme_factory.naming import TargetModelKey, model_data_prefix
from mme_factory.store import ArtifactStore
from planner.capacity import KindFootprint
from planner.footprint import MeasuredModel, TarballToMeasure
from planner.throughput import Traffic

KINDS = kind_names()


class PlanInputError(MmeFactoryError):
    """A tarball, footprint or customer given to `plan` cannot be used."""


def targets_per_customer(kind: str) -> int:
    """TargetModels one customer has of `kind`: one per role, else one."""
    return describe(kind).targets_per_customer


def registered_tarballs(
    store: ArtifactStore, customers: list[str] | None, work: Path
) -> list[TarballToMeasure]:
    """The current TargetModels in the customers' manifests, copied out of the store."""
    targets = [
        target
        for target in registered_targets(store)
        if customers is None or target.customer in customers
    ]
    if not targets:
        wanted = f"for {', '.join(customers)} " if customers else ""
        raise PlanInputError(
            f"no registered models {wanted}in {store.uri('registry/')}; onboard a customer "
            "first, or pass --tarball or --footprint"
        )
    work.mkdir(parents=True, exist_ok=True)
    found = []
    for index, target in enumerate(targets):
        local = work / f"{index}.tar.gz"
        key = model_data_prefix(target.endpoint) + target.target_model
        local.write_bytes(store.read_bytes(key))
        found.append(TarballToMeasure(target.kind, target.target_model, local))
    return found


def tarball_argument(value: str) -> TarballToMeasure:
    """`KIND=PATH`, or a PATH ending in a TargetModel key (`acme/classifier/v1.tar.gz`)."""
    kind, separator, path_text = value.partition("=")
    if separator and kind in KINDS:
        path = Path(path_text)
    else:
        path = Path(value)
        tail = "/".join(PurePosixPath(path.as_posix()).parts[-3:])
        try:
            kind = TargetModelKey.parse(tail).kind
        except ValueError:
            raise PlanInputError(
                f"cannot tell the model kind of {value}; write KIND=PATH with KIND one of "
                f"{', '.join(KINDS)}"
            ) from None
    if kind not in KINDS:
        raise PlanInputError(f"{value}: unknown model kind {kind!r}; use one of {KINDS}")
    if not path.is_file():
        raise PlanInputError(f"tarball {path} does not exist")
    return TarballToMeasure(kind, str(path), path)


def footprint_argument(value: str) -> KindFootprint:
    """`KIND=MIB`: a footprint measured elsewhere (e.g. on a GPU instance), per TargetModel."""
    kind, _, mib = value.partition("=")
    try:
        memory = float(mib)
    except ValueError:
        memory = -1.0
    if kind not in KINDS or memory <= 0:
        raise PlanInputError(f"--footprint {value!r}: write KIND=MIB, e.g. embedding=512")
    return KindFootprint(kind, targets_per_customer(kind), memory)


def footprints_from(
    measured: list[MeasuredModel], host_overhead_mib: float = 0.0
) -> list[KindFootprint]:
    """One footprint per kind: the largest TargetModel of the kind, so every one of them fits."""
    by_kind: dict[str, list[MeasuredModel]] = defaultdict(list)
    for model in measured:
        by_kind[model.kind].append(model)
    footprints = []
    for kind in (kind for kind in KINDS if kind in by_kind):
        largest = max(by_kind[kind], key=lambda model: model.rss_added_mib)
        footprints.append(
            KindFootprint(
                kind=kind,
                targets_per_customer=targets_per_customer(kind),
                memory_mib=largest.rss_added_mib,
                host_overhead_mib=host_overhead_mib,
                load_s=max(model.load_s for model in by_kind[kind]),
                warm_p50_ms=max(model.warm_p50_ms for model in by_kind[kind]),
            )
        )
    return footprints


def traffic_argument(value: str) -> tuple[str, float]:
    """`KIND=R`: a peak of R requests per second for the kind."""
    kind, _, rate = value.partition("=")
    try:
        rps = float(rate)
    except ValueError:
        rps = -1.0
    if kind not in KINDS or rps <= 0:
        raise PlanInputError(f"{value!r}: write KIND=REQUESTS_PER_S, e.g. autocomplete=200")
    return kind, rps


def traffic_from(fleet: list[str] | None, per_customer: list[str] | None) -> Traffic | None:
    """The peaks given on the command line, or None when there are none."""
    if not fleet and not per_customer:
        return None
    try:
        return Traffic(
            dict(map(traffic_argument, fleet or [])),
            dict(map(traffic_argument, per_customer or [])),
        )
    except ValueError as error:
        raise PlanInputError(str(error)) from None


def warm_latency_by_kind(measured: list[MeasuredModel]) -> dict[str, float]:
    """The slowest warm p50 of each kind's TargetModels on the local run, in ms."""
    found: dict[str, float] = {}
    for model in measured:
        found[model.kind] = max(found.get(model.kind, 0.0), model.warm_p50_ms)
    return found
