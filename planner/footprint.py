"""Measure what a TargetModel costs when served: memory added, load time, warm latency.

Each tarball is unpacked as SageMaker does and loaded into a real Triton server through the
SageMaker routes, one at a time: the server's process tree (tritonserver plus the model's stub
processes) is measured before the load and after the first requests, then the model is
unloaded. Resident memory (RSS) counts shared library pages in every stub; unique memory (USS)
counts only what the model alone holds; the proportional share (PSS) splits shared pages among
the processes mapping them, the figure mme_local budgets by. RSS stays beside it for comparison.
The unique memory of each stub process the load started is recorded too, by Triton model name.
These are the local emulator's figures: its `pytorch` backend runs TorchScript in a Python stub,
where a production server runs libtorch inside tritonserver.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psutil

from mme_factory.errors import MmeFactoryError
from mme_factory.model_archive import ArchiveLimits, extract_model
from mme_factory.model_kinds import describe
from mme_factory.protocol import kserve_request
from mme_factory.settings import Settings
from mme_factory.triton import TritonRuntime, TritonServer
from mme_factory.triton.process_memory import process_tree

MIB = 1024**2
SETTLE_S = 1.0


@dataclass(frozen=True)
class TarballToMeasure:
    kind: str
    label: str  # the TargetModel key, or the tarball's path
    path: Path


@dataclass(frozen=True)
class MeasuredModel:
    kind: str
    label: str
    tarball_mib: float
    load_s: float
    rss_added_mib: float
    uss_added_mib: float
    pss_added_mib: float
    first_inference_ms: float
    warm_p50_ms: float
    warm_p95_ms: float
    stub_uss_mib: dict[str, float] = field(default_factory=dict)  # Triton model name -> MiB

    def to_dict(self) -> dict[str, Any]:
        return {
            name: round(value, 3) if isinstance(value, float) else value
            for name, value in asdict(self).items()
        } | {"stub_uss_mib": {name: round(mib, 3) for name, mib in self.stub_uss_mib.items()}}


@dataclass(frozen=True)
class FootprintReport:
    server_rss_mib: float
    models: list[MeasuredModel]


def tree_memory(pid: int) -> tuple[int, int, int]:
    """(RSS, USS, PSS) in bytes of a process and all its descendants."""
    tree = process_tree(pid)
    return (
        sum(found.rss_bytes for found in tree),
        sum(found.uss_bytes for found in tree),
        sum(found.pss_bytes for found in tree),
    )


def _stub_model_name(process: psutil.Process) -> str | None:
    """A Python stub's first argument is its model file, `<repository>/<model>/<version>/...`."""
    try:
        arguments = process.cmdline()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None
    if len(arguments) < 2 or "backend_stub" not in Path(arguments[0]).name:
        return None
    return Path(arguments[1]).parent.parent.name


def stub_memory(server_pid: int, known: set[int]) -> dict[str, int]:
    """USS in bytes of the stub processes not in `known`, summed per Triton model name."""
    found: dict[str, int] = {}
    for process in psutil.Process(server_pid).children(recursive=True):
        name = None if process.pid in known else _stub_model_name(process)
        if name is None:
            continue
        try:
            found[name] = found.get(name, 0) + process.memory_full_info().uss
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


def _invoke_ms(server: TritonServer, name: str, body: bytes) -> float:
    started = time.perf_counter()
    status, _, answer = server.invoke(name, body)
    elapsed = (time.perf_counter() - started) * 1000
    if status != 200:
        raise MmeFactoryError(f"model {name} answered {status}: {answer[:300]!r}")
    return elapsed


def measure_one(
    server: TritonServer, model: TarballToMeasure, repository: Path, repeats: int
) -> MeasuredModel:
    try:
        inputs = describe(model.kind).latency_inputs
    except ValueError as error:
        raise MmeFactoryError(f"{model.label}: {error}") from None
    name = f"footprint-{repository.parent.name}"
    assert server.pid is not None
    rss_before, uss_before, pss_before = tree_memory(server.pid)
    known = {child.pid for child in psutil.Process(server.pid).children(recursive=True)}
    started = time.perf_counter()
    server.load(name, repository)
    load_s = time.perf_counter() - started
    try:
        body = kserve_request(inputs)
        first_ms = _invoke_ms(server, name, body)
        warm = sorted(_invoke_ms(server, name, body) for _ in range(repeats))
        time.sleep(SETTLE_S)
        rss_after, uss_after, pss_after = tree_memory(server.pid)
        stubs = stub_memory(server.pid, known)
    finally:
        server.unload(name)
    return MeasuredModel(
        kind=model.kind,
        label=model.label,
        tarball_mib=model.path.stat().st_size / MIB,
        load_s=load_s,
        rss_added_mib=(rss_after - rss_before) / MIB,
        uss_added_mib=(uss_after - uss_before) / MIB,
        pss_added_mib=(pss_after - pss_before) / MIB,
        first_inference_ms=first_ms,
        warm_p50_ms=statistics.median(warm),
        warm_p95_ms=warm[min(len(warm) - 1, round(0.95 * (len(warm) - 1)))],
        stub_uss_mib={name: uss / MIB for name, uss in stubs.items()},
    )


def _child_count(server: TritonServer) -> int:
    assert server.pid is not None
    return len(psutil.Process(server.pid).children(recursive=True))


def _wait_for_stubs_to_exit(server: TritonServer, baseline: int, timeout_s: float = 30.0) -> None:
    """An unloaded model's stub exits shortly after the unload call returns."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and _child_count(server) > baseline:
        time.sleep(0.2)


def unpack_tarballs(models: list[TarballToMeasure], settings: Settings, work: Path) -> list[Path]:
    """Unpack each tarball once, as SageMaker does, into `<work>/m<index>/model`."""
    limits = ArchiveLimits.from_settings(settings.mme_local)
    return [
        extract_model(model.path, work / f"m{index}" / "model", limits)
        for index, model in enumerate(models)
    ]


def measure_tarballs(
    models: list[TarballToMeasure],
    repositories: list[Path],
    settings: Settings,
    work: Path,
    repeats: int = 20,
    progress: Any = print,
) -> FootprintReport:
    """Load each unpacked tarball alone on one private Triton server and measure it."""
    server = TritonServer(TritonRuntime.from_settings(settings), work, work / "triton.log")
    server.start(timeout_s=settings.triton.server_start_timeout_s)
    try:
        time.sleep(SETTLE_S)
        assert server.pid is not None
        server_rss = tree_memory(server.pid)[0] / MIB
        baseline_children = _child_count(server)
        measured = []
        for index, (model, repository) in enumerate(zip(models, repositories, strict=True)):
            progress(f"measuring {model.label} ({index + 1}/{len(models)}) ...")
            _wait_for_stubs_to_exit(server, baseline_children)
            measured.append(measure_one(server, model, repository, repeats))
    finally:
        server.stop()
    return FootprintReport(server_rss, measured)
