"""What the serving runtime holds besides weights and activations: modeled, with the sources.

On a GPU instance every process that uses CUDA has its own CUDA context (GPU memory) and maps
the CUDA and torch libraries (host memory). tritonserver has one, shared by every libtorch
model it runs. A Python-backend model whose instances run on the GPU (`KIND_GPU`) runs each
instance in its own stub process, which initialises CUDA again: one more context and one more
runtime per instance. A Python-backend member on the CPU (the tokenizer and post-steps, pinned
with `KIND_CPU`) has no CUDA context; its stub costs the host memory it holds, which the local
run measures (`MEASURED`). On a CPU instance type everything counts against host memory.

Every Python stub, on the CPU or the GPU, also exchanges tensors with tritonserver through a
shared-memory region in `/dev/shm`. That region is RAM-backed tmpfs, so it is counted as host
memory; SageMaker does not let a container enlarge `/dev/shm`, which is why its Triton image
starts each region small.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from mme_factory.settings import TritonSettings
from planner.served_members import PYTHON
from planner.sourced_figure import Figure

if TYPE_CHECKING:
    from planner.weights_and_activations import MeasuredMember

MIB = 1024**2

# GPU memory of one CUDA context with PyTorch's kernels on a T4: nvidia-smi shows 300-500 MiB
# for a process that has only initialised CUDA (CUDA 11.7 and later load kernels lazily; before,
# it was over 1 GiB). The middle of that range is used.
CUDA_CONTEXT_GPU_MIB = 400.0

# Host memory of a process that has initialised CUDA and torch, and what a SageMaker instance
# keeps for the OS and its agents. Derived together from the published case: 292 MB
# autocomplete models (Python backend, one stub each) fit 4 to an ml.g4dn.xlarge (16 GiB host)
# and 10 to an ml.g4dn.2xlarge (32 GiB host), bound by host memory. At the plan's 80 %
# utilisation that is 13,107 and 26,214 MiB usable. With H per stub and R per instance,
#   4H + R <= 13,107 < 5H + R   and   10H + R <= 26,214 < 11H + R
# hold for 1,872 < H < 2,621 MiB; with H = 2,048, for 3,686 < R <= 4,915. R is tritonserver's
# own CUDA runtime (one more H) plus 2,048 MiB for the OS and agents: R = 4,096, which gives
# floor((13,107 - 4,096) / 2,048) = 4 and floor((26,214 - 4,096) / 2,048) = 10. Without a
# per-instance share no single H gives both (13,107 / 5 = 26,214 / 10). With the stub's 16 MiB
# of /dev/shm (below), 2,064 MiB a stub, the counts stay 4 and 10.
CUDA_PROCESS_HOST_MIB = 2048.0
OS_AND_AGENTS_HOST_MIB = 2048.0

# A CPU-side Python stub when the local run did not measure one: the tokenizer step's stub
# holds about 25 MiB of its own memory on the local runtime (a `tokenizers` tokenizer and the
# stub's interpreter); rounded up.
PYTHON_STUB_HOST_MIB = 32.0

# The Python backend's shared-memory region per stub process: what the endpoints are configured
# with (`triton.python_shm_default_bytes`, passed to the container as
# SAGEMAKER_TRITON_SHM_DEFAULT_BYTE_SIZE; the image's own default is 16 MiB, from
# triton-inference-server/server, docker/sagemaker/serve). The default size is counted.
PYTHON_STUB_SHM_MIB = TritonSettings().python_shm_default_bytes / 1024**2

# tritonserver on a CPU instance before any model, with the libtorch and Python backends
# loaded: the server alone holds about 35 MiB resident on the local run, and loading torch's
# CPU libraries adds about 240 MiB to a process here; rounded up for the production image.
TRITONSERVER_HOST_MIB = 512.0


@dataclass(frozen=True)
class Overhead:
    gpu: Figure
    host: Figure
    shm: Figure = field(default_factory=lambda: Figure(0.0))  # /dev/shm: host memory too


def member_overhead(
    member: MeasuredMember, on_gpu: bool, stub_uss_mib: float | None = None
) -> Overhead:
    """Runtime memory of all instances of one member, beyond its weights and activations.

    `stub_uss_mib` is the member's stub processes' unique memory on the local run; the stub's
    weights are taken out of it (they are counted as weights).
    """
    count = member.instance_count
    if member.backend != PYTHON:
        # A libtorch model lives inside tritonserver and uses the server's CUDA context.
        return Overhead(Figure(0.0), Figure(0.0))
    shm = Figure.modeled(PYTHON_STUB_SHM_MIB).times(count)
    if on_gpu:
        return Overhead(
            Figure.modeled(CUDA_CONTEXT_GPU_MIB).times(count),
            Figure.modeled(CUDA_PROCESS_HOST_MIB).times(count),
            shm,
        )
    if stub_uss_mib is None:
        return Overhead(Figure(0.0), Figure.modeled(PYTHON_STUB_HOST_MIB).times(count), shm)
    # The stub's unique memory leaves out its shared-memory region (tritonserver maps it too).
    own = max(0.0, stub_uss_mib - member.weights_bytes * count / MIB)
    return Overhead(Figure(0.0), Figure.measured(own), shm)


def instance_reserve(has_gpu: bool) -> Overhead:
    """What one instance holds before any model: OS and agents, tritonserver, its CUDA context."""
    host = Figure.modeled(OS_AND_AGENTS_HOST_MIB)
    if has_gpu:
        return Overhead(
            Figure.modeled(CUDA_CONTEXT_GPU_MIB), host + Figure.modeled(CUDA_PROCESS_HOST_MIB)
        )
    return Overhead(Figure(0.0), host + Figure.modeled(TRITONSERVER_HOST_MIB))
