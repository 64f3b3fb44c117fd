"""The local Triton server: its runtime environment, the server process and its memory."""

from mme_factory.triton.runtime import LOCAL_PYTORCH_BACKEND, TritonRuntime
from mme_factory.triton.server import TritonError, TritonServer, free_port

__all__ = ["LOCAL_PYTORCH_BACKEND", "TritonError", "TritonRuntime", "TritonServer", "free_port"]
