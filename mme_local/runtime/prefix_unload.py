"""Unloading the TargetModels under a key prefix (an offboarded customer's), loads in flight too.

While an unload of a prefix runs, every load under it is withdrawn: a load in flight is not kept
(it stops at its next step, or unloads the model from Triton once it is loaded, and deletes its
unpacked files) and no new load under the prefix starts. The unload returns once the loaded
models are unloaded and those loads have ended, so that nothing under the prefix is then loaded,
in Triton or unpacked on disk, nor becomes so but through a call made after it returned.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from mme_local.runtime.target_model import TargetModel

EvictPrefix = Callable[[str], Awaitable[list[str]]]


class PrefixUnloads:
    def __init__(self) -> None:
        self._prefixes: Counter[str] = Counter()  # prefixes being unloaded -> unloads of each

    def withdrawn(self, key: str) -> bool:
        """Whether a load of `key` must not be kept: an unload of a prefix of it is running."""
        return any(key.startswith(prefix) for prefix in self._prefixes)

    async def unload(
        self,
        prefix: str,
        evict: EvictPrefix,
        loads: Mapping[TargetModel, asyncio.Task[Any]],
    ) -> list[str]:
        """Evict the loaded models under `prefix` and wait for the loads under it (`loads`: the
        endpoint's loads in flight) to end; the keys of both, sorted."""
        self._prefixes[prefix] += 1
        try:
            evicted = await evict(prefix)
            withdrawn = {
                target.key: task for target, task in loads.items() if target.key.startswith(prefix)
            }
            if withdrawn:
                await asyncio.wait(withdrawn.values())
        finally:
            self._prefixes[prefix] -= 1
            if self._prefixes[prefix] <= 0:
                del self._prefixes[prefix]
        return sorted({*evicted, *withdrawn})
