"""Processes we started, recognised by more than their PID, and stopped with a bound.

A PID outlives its process: after an exit or a reboot the number can belong to anything. So a
process is recorded at launch with its start time, executable and command line, and is signalled
only while all three still match. Processes found by scanning are matched on their exact
executable path and arguments, never on a substring of the command line (a `tail -f` of a log
under the same directory is not ours).
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil

# A process's start, counted in clock ticks since boot, never changes; psutil's create_time() adds
# the boot time as the wall clock now puts it, which moves whenever the clock is stepped.
START_TIME_TOLERANCE_S = 0.05
# starttime is field 22 of /proc/<pid>/stat; counted from the state, field 3, it is index 19.
STARTTIME_FIELD = 19


@dataclass(frozen=True)
class ProcessIdentity:
    pid: int
    started_since_boot_s: float
    exe: str
    cmdline: tuple[str, ...]

    @classmethod
    def of(cls, pid: int) -> ProcessIdentity:
        """The identity of the running process `pid` (psutil.NoSuchProcess when there is none)."""
        process = psutil.Process(pid)
        with process.oneshot():
            return cls(pid, started_since_boot_s(pid), _exe(process), tuple(process.cmdline()))

    def to_json(self) -> str:
        record = {
            "pid": self.pid,
            "started_since_boot_s": self.started_since_boot_s,
            "exe": self.exe,
            "cmdline": list(self.cmdline),
        }
        return json.dumps(record) + "\n"

    @classmethod
    def from_json(cls, text: str) -> ProcessIdentity | None:
        """The recorded identity, or None when `text` is not one (a bare PID proves nothing)."""
        try:
            record = json.loads(text)
            if "started_since_boot_s" in record:
                started = float(record["started_since_boot_s"])
            else:  # written before the start was recorded relative to boot
                started = float(record["create_time"]) - psutil.boot_time()
            return cls(
                int(record["pid"]),
                started,
                str(record["exe"]),
                tuple(str(part) for part in record["cmdline"]),
            )
        except (ValueError, TypeError, KeyError):
            return None

    def process(self) -> psutil.Process | None:
        """The live process when it is still this one; None when gone, a zombie or not ours."""
        try:
            process = psutil.Process(self.pid)
            with process.oneshot():
                if process.status() == psutil.STATUS_ZOMBIE:
                    return None
                same = (
                    abs(started_since_boot_s(self.pid) - self.started_since_boot_s)
                    <= START_TIME_TOLERANCE_S
                    and _exe(process) == self.exe
                    and tuple(process.cmdline()) == self.cmdline
                )
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            return None
        return process if same else None


def processes_running(executable: str, argument: str | None = None) -> Iterator[psutil.Process]:
    """Processes whose argv[0] is exactly `executable` (and with `argument` among their args)."""
    for process in psutil.process_iter(["cmdline"]):
        cmdline: Sequence[str] = process.info.get("cmdline") or ()
        if cmdline and cmdline[0] == executable and (argument is None or argument in cmdline[1:]):
            yield process


def stop_process_tree(process: psutil.Process, timeout_s: float = 10.0) -> None:
    """SIGTERM `process`, SIGKILL it after `timeout_s`; then kill the descendants it had.

    psutil refuses to signal a `Process` whose PID was reused since it was looked up, so the
    descendants recorded before the signal are never confused with newer processes.
    """
    try:
        descendants = process.children(recursive=True)
    except psutil.NoSuchProcess:
        descendants = []
    with contextlib.suppress(psutil.NoSuchProcess):
        process.terminate()
        try:
            process.wait(timeout=timeout_s)
        except psutil.TimeoutExpired:
            process.kill()
            process.wait(timeout=timeout_s)
    for child in descendants:
        with contextlib.suppress(psutil.NoSuchProcess, psutil.TimeoutExpired):
            child.kill()
            child.wait(timeout=timeout_s)


def started_since_boot_s(pid: int) -> float:
    """Seconds from boot to the start of process `pid`, whatever the wall clock did since.

    On Linux this is the kernel's own count (clock ticks in /proc/<pid>/stat), which no clock step
    or skew can move; elsewhere psutil's start time less its boot time, both read together.
    """
    stat = Path(f"/proc/{pid}/stat")
    if Path("/proc/self/stat").exists():
        try:
            text = stat.read_text()
        except (FileNotFoundError, ProcessLookupError) as gone:
            raise psutil.NoSuchProcess(pid) from gone
        # The command name in parentheses may hold spaces; the fields after it are fixed.
        fields = text[text.rindex(")") + 2 :].split()
        return round(int(fields[STARTTIME_FIELD]) / os.sysconf("SC_CLK_TCK"), 3)
    for _ in range(3):
        boot = psutil.boot_time()
        created = psutil.Process(pid).create_time()
        if psutil.boot_time() == boot:  # the clock was not stepped between the two readings
            break
    return round(created - boot, 3)  # ticks are 10 ms; the subtraction adds float noise


def _exe(process: psutil.Process) -> str:
    try:
        return str(Path(process.exe()))
    except (psutil.AccessDenied, psutil.ZombieProcess, OSError):
        return ""
