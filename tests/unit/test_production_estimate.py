"""The production estimate: activation tracking, weights, the breakdown and the published case."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
import torch
from torch import Tensor, nn

from mme_factory.model_archive import ArchiveLimits, extract_model
from mme_factory.settings import load_settings
from planner.activation_tracker import LiveTensorBytes
from planner.capacity import KindFootprint, targets_per_instance
from planner.instance_catalog import load_catalog
from planner.production_estimate import breakdown, estimate_kinds, estimate_production
from planner.runtime_overhead import (
    CUDA_CONTEXT_GPU_MIB,
    CUDA_PROCESS_HOST_MIB,
    MIB,
    PYTHON_STUB_HOST_MIB,
    PYTHON_STUB_SHM_MIB,
)
from planner.sourced_figure import MEASURED, MODELED
from planner.weights_and_activations import (
    MeasuredMember,
    TargetModelMeasurement,
    measure_repository,
)
from tasks.packaging.package_triton import package_triton
from test_support.tiny_base_models import tiny_llama
from test_support.tiny_exports import MAX_LENGTH, tiny_bert, write_tiny_run

CATALOG = load_catalog()
G4DN = CATALOG.get("ml.g4dn.xlarge")
G4DN_2X = CATALOG.get("ml.g4dn.2xlarge")
C5 = CATALOG.get("ml.c5.2xlarge")
LIMITS = ArchiveLimits(1024**3, 1000)
SEED = 3
FLOAT = 4


class MatmulChain(nn.Module):
    def __init__(self, dims: list[int]) -> None:
        super().__init__()
        self.weights = nn.ParameterList(
            nn.Parameter(torch.randn(a, b)) for a, b in itertools.pairwise(dims)
        )

    def forward(self, x: Tensor) -> Tensor:
        for weight in self.weights:
            x = torch.relu(x @ weight)
        return x


CHAIN_DIMS = [64, 1024, 256, 2048, 32]
ROWS = 16


def _chain_peak(module: nn.Module, x: Tensor, weights: list[Tensor]) -> int:
    with torch.inference_mode(), LiveTensorBytes(exclude=[x, *weights]) as tracker:
        module(x)
    assert tracker.live_bytes <= ROWS * CHAIN_DIMS[-1] * FLOAT  # only the output may be left
    return tracker.peak_bytes


def test_tracker_peak_of_a_matmul_chain_is_known_analytically() -> None:
    module = MatmulChain(CHAIN_DIMS).eval()
    x = torch.randn(ROWS, CHAIN_DIMS[0])
    sizes = [ROWS * d * FLOAT for d in CHAIN_DIMS[1:]]
    # Eager: while relu runs, the previous layer's output, the product and relu's output live.
    previous = [0, *sizes[:-1]]  # the input is excluded
    expected = max(prior + 2 * size for prior, size in zip(previous, sizes, strict=True))
    assert _chain_peak(module, x, list(module.parameters())) == expected


def test_tracker_sees_the_ops_inside_torchscript() -> None:
    module = MatmulChain(CHAIN_DIMS).eval()
    x = torch.randn(ROWS, CHAIN_DIMS[0])
    scripted = torch.jit.script(module)
    sizes = [ROWS * d * FLOAT for d in CHAIN_DIMS[1:]]
    # The TorchScript interpreter frees a value after its last use: product and relu output.
    assert _chain_peak(scripted, x, list(scripted.parameters())) == max(2 * s for s in sizes)


@pytest.fixture(scope="module")
def tiny_tarballs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    work = tmp_path_factory.mktemp("estimate")
    run = write_tiny_run(work / "state", "acme", "run-1", seed=SEED)
    summary = package_triton(run, load_settings(environ={}), version="v1")
    return {package.target: Path(package.tarball) for package in summary.packages}


@pytest.fixture(scope="module")
def measured(
    tiny_tarballs: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> list[TargetModelMeasurement]:
    work = tmp_path_factory.mktemp("measure")
    return [
        measure_repository(
            target.split("-")[0], target, extract_model(path, work / target / "model", LIMITS)
        )
        for target, path in tiny_tarballs.items()
    ]


def _member(measurements: list[TargetModelMeasurement], label: str, member: str) -> MeasuredMember:
    found = next(m for m in measurements if m.label == label)
    return next(m for m in found.members if m.member == member)


def test_weights_of_a_tiny_exported_encoder_are_its_parameter_bytes(
    measured: list[TargetModelMeasurement],
) -> None:
    # write_tiny_run gives the query encoder the run's seed. The served encoder mean-pools the
    # BERT's last hidden state: it holds the BERT's parameters without its pooler.
    bert = tiny_bert(SEED)
    served = [p for name, p in bert.named_parameters() if not name.startswith("pooler.")]
    expected = sum(t.numel() * t.element_size() for t in served)
    assert _member(measured, "embedding-query", "encoder").weights_bytes == expected


def test_weights_of_the_autocomplete_generator_are_its_llama_parameters(
    measured: list[TargetModelMeasurement],
) -> None:
    # write_tiny_run gives the autocomplete the run's seed + 3, untied embeddings.
    llama = tiny_llama(
        SEED + 3,
        vocab_size=30522,
        max_position_embeddings=128,
        tie_word_embeddings=False,
        bos_token_id=101,
        eos_token_id=102,
    )
    expected = sum(t.numel() * t.element_size() for t in llama.parameters())
    generator = _member(measured, "autocomplete", "generator")
    assert generator.backend == "pytorch_libtorch" and generator.dtype == "float32"
    # The scripted generator adds its rotary frequencies and end-of-text ids, small buffers.
    assert 0 <= generator.weights_bytes - expected <= 1024
    # The Python steps around it hold no weights.
    assert _member(measured, "autocomplete", "text").weights_bytes == 0


def test_activations_are_measured_at_the_configured_largest_request(
    measured: list[TargetModelMeasurement], tiny_tarballs: dict[str, Path], tmp_path: Path
) -> None:
    encoder = _member(measured, "embedding-query", "encoder")
    assert encoder.measured_at == f"8 x {MAX_LENGTH} tokens"
    # The encoder's last hidden state alone is rows x tokens x hidden floats.
    assert encoder.activation_bytes >= 8 * MAX_LENGTH * 32 * FLOAT
    repository = extract_model(tiny_tarballs["embedding-query"], tmp_path / "model", LIMITS)
    one_row = measure_repository("embedding", "q", repository, max_batch=1)
    assert 0 < one_row.members[0].activation_bytes < encoder.activation_bytes
    assert encoder.dtype == "float32"
    assert _member(measured, "classifier", "text").weights_bytes == 0
    generator = _member(measured, "autocomplete", "generator")
    # The packaged max_batch_size rows of the export's 48 prompt tokens, padded to 64 as the
    # text step pads them, then 32 new tokens.
    assert generator.measured_at == "8 x 64 tokens + 32 new"
    # The prompt pass's logits: 8 rows x 48 positions over the 30,522-token vocabulary.
    assert generator.activation_bytes >= 8 * 48 * 30522 * FLOAT


def test_breakdown_on_a_gpu_instance_counts_no_cuda_context_per_libtorch_model(
    measured: list[TargetModelMeasurement],
) -> None:
    rows = {b.label: b for b in (breakdown(m, G4DN) for m in measured)}
    for label in ("embedding-query", "embedding-article", "classifier", "autocomplete"):
        libtorch = rows[label]
        # The TorchScript model shares tritonserver's CUDA context: no overhead of its own.
        assert libtorch.overhead_gpu.mib == 0
        assert libtorch.weights.source == libtorch.activations.source == MEASURED
        assert libtorch.total_gpu.mib == pytest.approx(
            libtorch.weights.mib + libtorch.activations.mib
        )
    # One text-step stub per TargetModel stays on the CPU: host memory only, no CUDA.
    assert rows["embedding-query"].overhead_host.mib == PYTHON_STUB_HOST_MIB
    assert rows["classifier"].overhead_host.mib == PYTHON_STUB_HOST_MIB
    autocomplete = rows["autocomplete"]
    assert autocomplete.overhead_host.mib == PYTHON_STUB_HOST_MIB
    assert autocomplete.overhead_host.source == MODELED
    assert autocomplete.total_host.mib == pytest.approx(PYTHON_STUB_HOST_MIB + PYTHON_STUB_SHM_MIB)
    assert autocomplete.total_host.mib < CUDA_PROCESS_HOST_MIB  # no stub initialises CUDA


def test_breakdown_on_a_cpu_instance_counts_everything_in_host_memory(
    measured: list[TargetModelMeasurement],
) -> None:
    stubs = {
        "acme--autocomplete--v1--text": 40.0,
        "acme--classifier--v1--text": 25.0,
    }
    rows = {b.label: b for b in (breakdown(m, C5, stubs) for m in measured)}
    autocomplete = rows["autocomplete"]
    assert autocomplete.total_gpu.mib == 0 and autocomplete.overhead_gpu.mib == 0
    # The stubs as measured; the generator runs inside tritonserver.
    assert autocomplete.overhead_host.mib == pytest.approx(40.0)
    assert autocomplete.overhead_host.source == MEASURED
    assert autocomplete.shm.mib == PYTHON_STUB_SHM_MIB
    assert autocomplete.total_host.mib == pytest.approx(
        autocomplete.weights.mib
        + autocomplete.activations.mib
        + autocomplete.overhead_host.mib
        + autocomplete.shm.mib
    )
    classifier = rows["classifier"]
    assert classifier.overhead_host.mib == pytest.approx(25.0)
    assert classifier.overhead_host.source == MEASURED
    estimates = {e.breakdown.kind: e for e in estimate_kinds(measured, C5, 0.8, stubs)}
    assert estimates["embedding"].footprint.targets_per_customer == 2
    assert all(e.fit.bound_by == "host memory" for e in estimates.values())


def _autocomplete_of(weights_mb: float) -> TargetModelMeasurement:
    generator = MeasuredMember(
        name="acme--autocomplete--v1--generator",
        member="generator",
        backend="python",
        instance_count=1,
        runs_on_gpu=True,
        weights_bytes=int(weights_mb * 1e6),
    )
    return TargetModelMeasurement("autocomplete", "acme/autocomplete/v1.tar.gz", [generator])


def test_published_case_four_and_ten_autocomplete_models_per_g4dn() -> None:
    models = [_autocomplete_of(292)]
    small = estimate_kinds(models, G4DN, utilisation=0.8)[0]
    large = estimate_kinds(models, G4DN_2X, utilisation=0.8)[0]
    assert (small.fit.targets_per_instance, small.fit.bound_by) == (4, "host memory")
    assert (large.fit.targets_per_instance, large.fit.bound_by) == (10, "host memory")
    # GPU memory alone would hold many more: the stubs' CUDA runtimes bind.
    gpu_only = KindFootprint("autocomplete", 1, small.footprint.memory_mib)
    assert targets_per_instance(G4DN, gpu_only, 0.8).targets_per_instance > 10
    assert small.footprint.memory_mib == pytest.approx(292e6 / MIB + CUDA_CONTEXT_GPU_MIB)


def test_production_plan_is_sized_from_the_breakdown_and_given_footprints(
    measured: list[TargetModelMeasurement],
) -> None:
    given = [KindFootprint("autocomplete", 1, memory_mib=300)]
    without_autocomplete = [m for m in measured if m.kind != "autocomplete"]
    estimate = estimate_production(without_autocomplete, [G4DN, C5], CATALOG, [100], given=given)
    assert set(estimate.estimates) == {"ml.g4dn.xlarge", "ml.c5.2xlarge"}
    plan = next(p for p in estimate.plans if p.instance_type == "ml.g4dn.xlarge")
    kinds = {k.kind: k for k in plan.kinds}
    assert set(kinds) == {"embedding", "classifier", "autocomplete"}
    embedding = next(
        e for e in estimate.estimates["ml.g4dn.xlarge"] if e.footprint.kind == "embedding"
    )
    assert kinds["embedding"].targets_per_instance == embedding.fit.targets_per_instance
