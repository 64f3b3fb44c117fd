"""Memory of a process together with every process it started (Triton and its model stubs).

Resident memory (RSS) counts a page in every process that maps it: each Python-backend stub maps
the same interpreter, numpy and torch pages, so the RSS of Triton and six stubs adds those pages
up seven times. The proportional share (PSS) divides each shared page among the processes that
map it, so the PSS of the whole tree is what the tree costs the machine. Reading PSS walks every
mapping of a process (`/proc/<pid>/smaps_rollup`) and is several times slower than RSS, so
callers on a request path read it in the background.
"""

from __future__ import annotations

from dataclasses import dataclass

import psutil


@dataclass(frozen=True)
class ProcessMemory:
    pid: int
    arguments: tuple[str, ...]
    rss_bytes: int
    pss_bytes: int
    uss_bytes: int


def process_tree(pid: int) -> list[ProcessMemory]:
    """RSS, PSS and USS of `pid` and each of its descendants, with their command lines.

    Processes that exit while they are being read are left out; a missing `pid` gives [].
    """
    try:
        root = psutil.Process(pid)
        processes = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []
    found = []
    for process in processes:
        try:
            memory = process.memory_full_info()
            arguments = tuple(process.cmdline())
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        pss = getattr(memory, "pss", memory.uss)  # PSS is Linux-only; USS is the floor of it
        found.append(ProcessMemory(process.pid, arguments, memory.rss, pss, memory.uss))
    return found


def process_tree_memory(pid: int, unique: bool = False, proportional: bool = False) -> int:
    """Bytes resident (RSS), held by these processes alone (USS) or their proportional share
    (PSS) of what they map, in total. USS and PSS are slower to read than RSS.

    Processes that exit while they are being counted are left out; a missing `pid` gives 0.
    """
    if not unique and not proportional:
        try:
            root = psutil.Process(pid)
            processes = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return 0
        total = 0
        for process in processes:
            try:
                total += process.memory_info().rss
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
        return total
    tree = process_tree(pid)
    return sum(found.uss_bytes if unique else found.pss_bytes for found in tree)
