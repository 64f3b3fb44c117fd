"""One endpoint's serving: its model cache, cold loads, memory budget and Triton process.

endpoint_runtime.py  an endpoint's invoke path: single-flight loads, restarts, stop
cold_load.py         one cold load: slot, download, unpack, memory reservation, Triton load
endpoint_memory.py   the memory budget: readings, reservations, evictions
prefix_unload.py     unloading a key prefix, loads in flight included
memory_ledger.py     the bytes used, reserved and being freed
model_cache.py       the loaded models in LRU order, changed in one critical section
model_usage.py       per TargetModel footprint and customer traffic
model_source.py      the bytes at a TargetModel's key, checked against the store's sha256
model_server.py      the async face of the endpoint's Triton process
triton_http.py       the keep-alive HTTP client of the invoke hot path
endpoint_status.py   the endpoint's gauges and description
metrics.py           the service's metric store, named after SageMaker's
target_model.py      TargetModel names and the Triton model name of each
cache_policy.py      an endpoint's budget, waits and parallel loads
"""

from mme_local.runtime.cache_policy import CachePolicy
from mme_local.runtime.endpoint_runtime import EndpointRuntime
from mme_local.runtime.metrics import Metrics
from mme_local.runtime.model_server import ModelServer, ServerMemory, TritonModelServer
from mme_local.runtime.model_source import ModelSource, model_data_store
from mme_local.runtime.target_model import InvalidTargetModel, TargetModel

__all__ = [
    "CachePolicy",
    "EndpointRuntime",
    "InvalidTargetModel",
    "Metrics",
    "ModelServer",
    "ModelSource",
    "ServerMemory",
    "TargetModel",
    "TritonModelServer",
    "model_data_store",
]
