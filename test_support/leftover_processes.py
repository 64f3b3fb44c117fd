"""Processes a test session started and left running.

Each session (each pytest-xdist worker) puts its own mark in its environment before any test
runs; every process started from it inherits the mark. Once every fixture has stopped what it
started, a process still carrying the mark was leaked: it is named, killed and fails the run.
"""

from __future__ import annotations

import os
import time
import uuid

import psutil

MARK_VARIABLE = "MME_TESTS_SESSION_MARK"
EXIT_GRACE_S = 10.0


def mark_this_session(worker: str) -> str:
    mark = f"{worker}-{uuid.uuid4().hex}"
    os.environ[MARK_VARIABLE] = mark
    return mark


def marked_processes(mark: str) -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter():
        if process.pid == os.getpid():
            continue
        try:
            if process.environ().get(MARK_VARIABLE) == mark and process.status() != "zombie":
                found.append(process)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return found


def kill_leftovers(mark: str) -> list[str]:
    """Wait a little for marked processes to exit; kill and describe the ones that do not."""
    deadline = time.monotonic() + EXIT_GRACE_S
    leftovers = marked_processes(mark)
    while leftovers and time.monotonic() < deadline:
        time.sleep(0.5)
        leftovers = marked_processes(mark)
    described = []
    for process in leftovers:
        try:
            described.append(f"{process.pid} {' '.join(process.cmdline())}")
            process.kill()
        except psutil.NoSuchProcess:
            continue
    return described
