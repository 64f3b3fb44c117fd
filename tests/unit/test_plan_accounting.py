"""What the plan counts on a GPU endpoint: a generator's key/value cache, one CUDA context per
server, the Python stubs' /dev/shm, the throughput bound, a GPU run's figures and the
Kubernetes GPU-slice baseline."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from google.protobuf import text_format
from torch import Tensor, nn
from tritonclient.grpc import model_config_pb2

from cli.main import main
from planner.capacity import KindFootprint, plan_customers, plan_kind
from planner.gpu_measurements import GpuMeasurementError, instance_throughputs, load_gpu_check
from planner.gpu_slice_baseline import load_slice_catalog
from planner.instance_catalog import load_catalog
from planner.production_estimate import breakdown, estimate_kinds
from planner.runtime_overhead import (
    CUDA_CONTEXT_GPU_MIB,
    CUDA_PROCESS_HOST_MIB,
    MIB,
    OS_AND_AGENTS_HOST_MIB,
    PYTHON_STUB_HOST_MIB,
    PYTHON_STUB_SHM_MIB,
)
from planner.throughput import Throughput, Traffic, device_mismatch
from planner.weights_and_activations import (
    MeasuredMember,
    Request,
    TargetModelMeasurement,
    generated_tokens,
    measure_repository,
    request_shape,
)

CATALOG = load_catalog()
G4DN = CATALOG.get("ml.g4dn.xlarge")
C5 = CATALOG.get("ml.c5.2xlarge")
SLICES = load_slice_catalog()
HALF = 2

VOCAB, HIDDEN, LAYERS = 64, 24, 3
BATCH, PROMPT = 4, 12


class CachedLayer(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.key = nn.Linear(HIDDEN, HIDDEN, bias=False)
        self.value = nn.Linear(HIDDEN, HIDDEN, bias=False)

    def forward(
        self, x: Tensor, past: tuple[Tensor, Tensor] | None
    ) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        keys, values = self.key(x), self.value(x)
        if past is not None:
            keys = torch.cat([past[0], keys], dim=1)
            values = torch.cat([past[1], values], dim=1)
        scores = torch.softmax(x @ keys.transpose(1, 2), dim=-1)
        return x + scores @ values, (keys, values)


class TinyGenerator(nn.Module):
    """Greedy generation with the key/value cache inside the graph, as the served generator."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(VOCAB, HIDDEN)
        self.layers = nn.ModuleList(CachedLayer() for _ in range(LAYERS))
        self.head = nn.Linear(HIDDEN, VOCAB, bias=False)

    def forward(
        self, input_ids: Tensor, attention_mask: Tensor, max_new_tokens: Tensor
    ) -> tuple[Tensor, Tensor]:
        steps = int(max_new_tokens.max().item())
        batch = input_ids.shape[0]
        tokens = torch.full((batch, steps), -1, dtype=torch.int64)
        x = self.embed(input_ids)
        pasts: list[tuple[Tensor, Tensor]] = []
        for layer in self.layers:
            x, present = layer(x, None)
            pasts.append(present)
        for step in range(steps):
            token = self.head(x[:, -1]).argmax(-1)
            tokens[:, step] = token
            x = self.embed(token[:, None])
            grown: list[tuple[Tensor, Tensor]] = []
            for index, cached in enumerate(self.layers):
                x, present = cached(x, pasts[index])
                grown.append(present)
            pasts = grown
        return tokens, torch.zeros((batch, 1), dtype=torch.int64)


def _config(text: str) -> str:
    return text_format.MessageToString(text_format.Parse(text, model_config_pb2.ModelConfig()))


def _parameters(values: dict[str, object]) -> str:
    return "\n".join(
        f'parameters {{ key: "{key}" value {{ string_value: "{value}" }} }}'
        for key, value in values.items()
    )


def write_generator_repository(
    root: Path, new_tokens: int, tokenizer_parameters: dict[str, object] | None = None
) -> Path:
    """An autocomplete TargetModel: the Python text step and the libtorch generator."""
    prefix = "acme--autocomplete--v2--"
    parameters = {"max_length": PROMPT, "default_max_new_tokens": new_tokens}
    members = {
        "text": 'backend: "python"\n'
        + _parameters(parameters | (tokenizer_parameters or {}))
        + "\ninstance_group { kind: KIND_CPU }",
        "generator": f'platform: "pytorch_libtorch"\nmax_batch_size: {BATCH}\n'
        'input { name: "input_ids" data_type: TYPE_INT64 dims: [-1] }\n'
        'input { name: "attention_mask" data_type: TYPE_INT64 dims: [-1] }\n'
        'input { name: "max_new_tokens" data_type: TYPE_INT64 dims: [1] }\n'
        'parameters { key: "INFERENCE_MODE" value { string_value: "true" } }',
    }
    for member, config in members.items():
        directory = root / f"{prefix}{member}"
        (directory / "1").mkdir(parents=True, exist_ok=True)
        (directory / "config.pbtxt").write_text(
            _config(f'name: "{prefix}{member}"\n{config}'), encoding="utf-8"
        )
    torch.manual_seed(0)
    scripted = torch.jit.script(TinyGenerator().half().eval())
    scripted.save(str(root / f"{prefix}generator" / "1" / "model.pt"))
    return root


def _generator(root: Path) -> MeasuredMember:
    measured = measure_repository("autocomplete", "acme/autocomplete/v2.tar.gz", root)
    return next(m for m in measured.members if m.member == "generator")


def _cache_bytes(new_tokens: int) -> int:
    return LAYERS * 2 * BATCH * (PROMPT + new_tokens) * HIDDEN * HALF


def test_generator_weights_count_at_their_half_precision(tmp_path: Path) -> None:
    generator = _generator(write_generator_repository(tmp_path, new_tokens=6))
    parameters = VOCAB * HIDDEN + LAYERS * 2 * HIDDEN * HIDDEN + HIDDEN * VOCAB
    assert generator.weights_bytes == parameters * HALF
    assert generator.dtype == "float16"


def test_generator_activations_hold_its_key_value_cache_at_max_batch(tmp_path: Path) -> None:
    short = _generator(write_generator_repository(tmp_path / "short", new_tokens=6))
    long = _generator(write_generator_repository(tmp_path / "long", new_tokens=30))
    assert short.measured_at == f"{BATCH} x {PROMPT} tokens + 6 new"
    assert long.measured_at == f"{BATCH} x {PROMPT} tokens + 30 new"
    # The whole cache lives at the last step: every layer's keys and values for every position.
    assert short.activation_bytes >= _cache_bytes(6)
    assert long.activation_bytes >= _cache_bytes(30)
    # 24 more positions grow the cache of every layer by that much.
    assert long.activation_bytes - short.activation_bytes >= _cache_bytes(30) - _cache_bytes(6)


def test_a_generator_prompt_leaves_room_for_its_new_tokens_padded_as_its_tokenizer_pads(
    tmp_path: Path,
) -> None:
    # 20 positions less 12 new tokens leave 8 of the 12 prompt tokens; padded to a multiple of 5.
    room = {"max_position_embeddings": 20, "pad_to_multiple": 5}
    generator = _generator(write_generator_repository(tmp_path, 12, room))
    assert generator.measured_at == f"{BATCH} x 10 tokens + 12 new"


def test_python_members_hold_no_weights_and_need_no_decoder_code(tmp_path: Path) -> None:
    measured = measure_repository(
        "autocomplete", "v2", write_generator_repository(tmp_path, new_tokens=6)
    )
    python = [m for m in measured.members if m.backend == "python"]
    assert {m.member for m in python} == {"text"}
    assert all(m.weights_bytes == m.activation_bytes == 0 and not m.measured_at for m in python)


def _embedding(tokenizer_instances: int = 1) -> TargetModelMeasurement:
    tokenizer = MeasuredMember(
        "acme--embedding-query--v1--tokenizer", "tokenizer", "python", tokenizer_instances, False
    )
    encoder = MeasuredMember(
        "acme--embedding-query--v1--encoder",
        "encoder",
        "pytorch_libtorch",
        1,
        True,
        weights_bytes=100 * MIB,
        activation_bytes=20 * MIB,
    )
    return TargetModelMeasurement(
        "embedding", "acme/embedding-query/v1.tar.gz", [tokenizer, encoder]
    )


def test_every_python_stub_holds_a_dev_shm_region_counted_as_host_memory() -> None:
    row = breakdown(_embedding(tokenizer_instances=2), G4DN)
    assert row.shm.mib == 2 * PYTHON_STUB_SHM_MIB == 4
    assert row.shm.is_modeled
    assert row.total_host.mib == pytest.approx(2 * PYTHON_STUB_HOST_MIB + 2 * PYTHON_STUB_SHM_MIB)
    # The libtorch encoder has no stub, hence no region.
    assert row.overhead_gpu.mib == 0 and row.total_gpu.mib == pytest.approx(120)


def test_one_cuda_context_per_server_however_many_libtorch_models() -> None:
    estimate = estimate_kinds([_embedding()], G4DN, utilisation=0.8)[0]
    assert estimate.reserve.gpu.mib == CUDA_CONTEXT_GPU_MIB
    # 16 GiB at 80 %, less the server's one context, over 120 MiB per encoder.
    gpu_usable = 16 * 1024 * 0.8 - CUDA_CONTEXT_GPU_MIB
    assert estimate.fit.targets_per_instance == math.floor(gpu_usable / 120) == 105
    assert estimate.fit.bound_by == "GPU memory"
    # A Python-backend generator on the GPU initialises CUDA in each of its stubs instead.
    stub = MeasuredMember("acme--autocomplete--v1--generator", "generator", "python", 2, True)
    row = breakdown(TargetModelMeasurement("autocomplete", "a", [stub]), G4DN)
    assert row.overhead_gpu.mib == 2 * CUDA_CONTEXT_GPU_MIB
    assert row.total_host.mib == 2 * (CUDA_PROCESS_HOST_MIB + PYTHON_STUB_SHM_MIB)


def _memory_bound(per_instance: int) -> KindFootprint:
    """A footprint that fits `per_instance` per ml.g4dn.xlarge by GPU memory."""
    usable = 16 * 1024 * 0.8
    return KindFootprint("autocomplete", 1, memory_mib=usable / (per_instance + 0.5))


def test_instances_are_the_larger_of_the_memory_and_throughput_bounds() -> None:
    footprint = _memory_bound(100)
    served = Throughput(200.0, "measured on NVIDIA T4, batch 8", "NVIDIA T4")
    busy = plan_kind(footprint, G4DN, CATALOG, 1000, peak_rps=5000.0, throughput=served)
    assert busy.memory_instances == 10
    assert busy.throughput_instances == math.ceil(5000 / (200 * 0.8)) == 32
    assert (busy.instances, busy.bound_by) == (32, "throughput")
    assert busy.mme_monthly == pytest.approx(32 * 0.7364 * 730)
    quiet = plan_kind(footprint, G4DN, CATALOG, 1000, peak_rps=100.0, throughput=served)
    assert (quiet.instances, quiet.bound_by, quiet.throughput_instances) == (10, "GPU memory", 1)


def test_traffic_per_customer_scales_with_the_customers() -> None:
    traffic = Traffic(fleet_rps={"embedding": 300.0}, per_customer_rps={"autocomplete": 0.5})
    assert traffic.peak_rps("autocomplete", 1000) == 500.0
    assert traffic.peak_rps("embedding", 1000) == traffic.peak_rps("embedding", 10) == 300.0
    assert traffic.peak_rps("classifier", 1000) is None
    with pytest.raises(ValueError, match="fleet or per customer"):
        Traffic(fleet_rps={"embedding": 1.0}, per_customer_rps={"embedding": 1.0})


def test_kubernetes_slice_baseline_is_priced_per_node() -> None:
    # 600 MiB of model and its own 400 MiB context: a 1 GiB slice, 16 per T4, but each pod's
    # CUDA runtime takes 2 GiB of the node's 16 GiB host memory after the OS: 7 pods a node.
    small = KindFootprint("classifier", 1, memory_mib=600, model_gpu_mib=600, cpu_side_host_mib=0)
    plan = plan_kind(small, G4DN, CATALOG, 100, slices=SLICES)
    assert plan.slices is not None
    assert plan.slices.slice_gib == 1
    host_pods = math.floor((16 * 1024 - OS_AND_AGENTS_HOST_MIB) / CUDA_PROCESS_HOST_MIB)
    assert (
        (plan.slices.pods_per_node, plan.slices.bound_by)
        == (host_pods, "host memory")
        == (
            7,
            "host memory",
        )
    )
    assert plan.slices.nodes == math.ceil(100 / 7) == 15
    assert plan.slices.monthly == pytest.approx(15 * 0.526 * 730)
    # 3,000 MiB and a context need a 4 GiB slice: 4 per T4, fewer than host memory allows.
    large = KindFootprint("classifier", 1, memory_mib=3000, model_gpu_mib=3000)
    baseline = plan_kind(large, G4DN, CATALOG, 100, slices=SLICES).slices
    assert baseline is not None
    assert (baseline.slice_gib, baseline.pods_per_node, baseline.bound_by) == (4, 4, "GPU slices")
    assert baseline.nodes == 25
    both = plan_customers([small, large], G4DN, CATALOG, 100, slices=SLICES)
    assert both.slice_monthly == pytest.approx((15 + 25) * 0.526 * 730 + 0.10 * 730)
    assert both.slice_saving == pytest.approx(1 - both.mme_monthly / both.slice_monthly)


def _gpu_check(tmp_path: Path, device: str = "NVIDIA T4") -> Path:
    path = tmp_path / "gpu-check.json"
    document = {
        "schema": "mme-factory/gpu-check/1",
        "device": device,
        "torch": "2.5.1",
        "kinds": {
            "embedding": {
                "dtype": "float16",
                "gpu_mib_per_model": 61.5,
                "request_ms": 4.0,
                "requests_per_s": {"1": 250.0, "8": 900.0, "32": 700.0},
            }
        },
    }
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


def test_a_gpu_run_replaces_the_modeled_gpu_memory_on_gpu_instance_types(tmp_path: Path) -> None:
    check = load_gpu_check(_gpu_check(tmp_path))
    gpu_row = breakdown(_embedding(), G4DN, gpu_memory=check.gpu_memory("embedding"))
    assert gpu_row.total_gpu.mib == pytest.approx(61.5)
    assert gpu_row.total_gpu.source == "measured on NVIDIA T4"
    estimates = {
        e.breakdown.instance_type: e
        for e in [
            *estimate_kinds([_embedding()], G4DN, 0.8, gpu_check=check),
            *estimate_kinds([_embedding()], C5, 0.8, gpu_check=check),
        ]
    }
    assert estimates["ml.g4dn.xlarge"].footprint.memory_mib == pytest.approx(61.5)
    # CPU instance types keep what this run measured.
    assert estimates["ml.c5.2xlarge"].breakdown.total_host.mib > 120
    served = instance_throughputs(G4DN, check, {"embedding": 50.0})["embedding"]
    assert (served.requests_per_s, served.source) == (900.0, "measured on NVIDIA T4, batch 8")
    on_cpu = instance_throughputs(C5, check, {"embedding": 50.0})["embedding"]
    assert on_cpu.requests_per_s == 20.0 and "CPU figure" in on_cpu.source
    assert device_mismatch(served, G4DN) is None


def test_a_gpu_run_on_another_gpu_is_named_as_such(tmp_path: Path) -> None:
    check = load_gpu_check(_gpu_check(tmp_path, device="NVIDIA H100 80GB HBM3"))
    served = check.throughput("embedding")
    assert served is not None
    note = device_mismatch(served, G4DN)
    assert note is not None and "NVIDIA H100" in note and "NVIDIA T4" in note


def test_a_file_that_is_not_a_gpu_check_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.json"
    path.write_text(json.dumps({"schema": "something/else", "device": "x"}), encoding="utf-8")
    with pytest.raises(GpuMeasurementError, match="gpu-check/1"):
        load_gpu_check(path)


def test_a_gpu_check_run_on_the_cpu_is_refused_naming_the_device(tmp_path: Path) -> None:
    path = _gpu_check(tmp_path, device="cpu (x86_64)")
    document = json.loads(path.read_text(encoding="utf-8"))
    path.write_text(json.dumps(document | {"on_gpu": False}), encoding="utf-8")
    with pytest.raises(GpuMeasurementError, match=r"measured on cpu \(x86_64\), not on a GPU"):
        load_gpu_check(path)


def test_plan_command_sizes_by_traffic_from_a_gpu_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    arguments = ["plan", "--footprint", "embedding=60", "--instance-type", "ml.g4dn.xlarge"]
    arguments += ["--customers", "100", "--peak-rps", "embedding=3000", "--json"]
    assert main([*arguments, "--measured", str(_gpu_check(tmp_path))]) == 0
    plan = json.loads(capsys.readouterr().out)["plans"][0]
    embedding = plan["kinds"][0]
    assert embedding["throughput_instances"] == math.ceil(3000 / (900 * 0.8)) == 5
    assert (embedding["instances"], embedding["bound_by"]) == (5, "throughput")
    assert plan["slice_monthly"] > plan["mme_monthly"]
    # Without a measurement of what an instance serves, a peak cannot be planned for.
    assert main(arguments) == 1
    assert "no measurement says how many one instance serves" in capsys.readouterr().err


def test_a_generation_that_ended_early_says_how_many_tokens_it_made() -> None:
    tokens = torch.tensor([[5, 7, -1, -1], [5, -1, -1, -1]])
    assert generated_tokens((tokens, torch.ones((2, 1), dtype=torch.int64))) == 2
    assert request_shape(Request(2, 8, 4), 2) == "2 x 8 tokens + 2 of 4 new (ended early)"
    assert request_shape(Request(2, 8, 4), 4) == "2 x 8 tokens + 4 new"
    assert request_shape(Request(2, 8), 0) == "2 x 8 tokens"
