"""Memory of a process together with every process it started (Triton and its model stubs)."""

from __future__ import annotations

import psutil


def process_tree_memory(pid: int, unique: bool = False) -> int:
    """Bytes resident (RSS), or held by these processes alone (USS, slower to read), in total.

    Processes that exit while they are being counted are left out; a missing `pid` gives 0.
    """
    try:
        root = psutil.Process(pid)
        processes = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0
    total = 0
    for process in processes:
        try:
            total += process.memory_full_info().uss if unique else process.memory_info().rss
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return total
