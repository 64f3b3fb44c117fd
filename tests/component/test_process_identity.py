"""Processes are signalled only while they are the ones we started, never by PID or path alone."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import psutil
import pytest

from deployments import local_stack
from mme_factory.process_identity import ProcessIdentity
from mme_factory.triton import TritonRuntime, TritonServer
from test_support.servers import stop_process


@pytest.fixture
def unrelated() -> Iterator[subprocess.Popen[bytes]]:
    """A process this test owns, standing in for whatever now holds a recorded PID."""
    process = subprocess.Popen(["sleep", "60"])
    try:
        yield process
    finally:
        stop_process(process, 10)


def _service(tmp_path: Path) -> local_stack.LocalService:
    return local_stack.LocalService(
        name="mme_local",
        command=("python", "-m", "mme_local"),
        url="http://127.0.0.1:9",
        health_path="/ping",
        start_timeout_s=5.0,
        state_dir=tmp_path,
    )


def _survives(process: subprocess.Popen[bytes]) -> bool:
    time.sleep(0.2)
    return process.poll() is None


def test_down_spares_a_process_that_reused_the_recorded_pid(tmp_path, unrelated):
    service = _service(tmp_path)
    service.pid_file.parent.mkdir(parents=True)
    recorded = ProcessIdentity.of(unrelated.pid)
    recorded = replace(recorded, started_since_boot_s=recorded.started_since_boot_s - 3600)
    service.pid_file.write_text(recorded.to_json())
    assert local_stack.running_pid(service) is None
    assert local_stack.stop(service) is False
    assert _survives(unrelated)


def test_down_spares_the_process_behind_a_bare_pid(tmp_path, unrelated):
    service = _service(tmp_path)
    service.pid_file.parent.mkdir(parents=True)
    service.pid_file.write_text(f"{unrelated.pid}\n")
    assert local_stack.status(service)["running"] is False
    assert local_stack.stop(service) is False
    assert _survives(unrelated)


def test_recorded_process_is_recognised_and_stopped(tmp_path, unrelated):
    service = _service(tmp_path)
    service.pid_file.parent.mkdir(parents=True)
    service.pid_file.write_text(ProcessIdentity.of(unrelated.pid).to_json())
    assert local_stack.running_pid(service) == unrelated.pid
    assert local_stack.stop(service) is True
    assert unrelated.wait(timeout=10) is not None
    assert not service.pid_file.exists()


def test_a_stepped_wall_clock_does_not_disown_a_recorded_process(tmp_path, unrelated, monkeypatch):
    service = _service(tmp_path)
    service.pid_file.parent.mkdir(parents=True)
    service.pid_file.write_text(ProcessIdentity.of(unrelated.pid).to_json())
    # NTP stepping the clock a second forward moves the boot time /proc/stat reports.
    boot_time = psutil._psplatform.boot_time
    monkeypatch.setattr(psutil._psplatform, "boot_time", lambda: boot_time() + 1.0)
    assert local_stack.running_pid(service) == unrelated.pid
    assert local_stack.stop(service) is True
    assert unrelated.wait(timeout=10) is not None


def test_a_record_written_with_the_wall_clock_start_is_still_recognised(tmp_path, unrelated):
    service = _service(tmp_path)
    service.pid_file.parent.mkdir(parents=True)
    process = psutil.Process(unrelated.pid)
    record = {
        "pid": unrelated.pid,
        "create_time": process.create_time(),
        "exe": process.exe(),
        "cmdline": process.cmdline(),
    }
    service.pid_file.write_text(json.dumps(record))
    assert local_stack.running_pid(service) == unrelated.pid


def _server(tmp_path: Path) -> TritonServer:
    runtime = TritonRuntime(tmp_path / "triton-env", tmp_path / "python-env")
    workdir = tmp_path / "endpoints" / "dev-mme-a" / "triton"
    return TritonServer(runtime, workdir, workdir / "triton.log")


def test_leftover_cleanup_spares_a_tail_of_the_triton_log(tmp_path):
    server = _server(tmp_path)
    server.log_path.parent.mkdir(parents=True)
    server.log_path.write_text("I1201 started\n")
    tail = subprocess.Popen(["tail", "-f", str(server.log_path)], stdout=subprocess.DEVNULL)
    try:
        assert tail.pid not in server.stop_leftovers()
        assert _survives(tail)
    finally:
        stop_process(tail, 10)


def test_leftover_stub_of_this_workdir_is_stopped(tmp_path):
    server = _server(tmp_path)
    stub = server.workdir / "backends" / "python" / "triton_python_backend_stub"
    stub.parent.mkdir(parents=True)
    shutil.copy(shutil.which("sleep") or "/bin/sleep", stub)
    orphan = subprocess.Popen([str(stub), "60"])
    elsewhere = _server(tmp_path / "other")
    try:
        assert orphan.pid not in elsewhere.stop_leftovers()
        assert orphan.pid in server.stop_leftovers()
        assert orphan.wait(timeout=10) is not None
        assert not psutil.pid_exists(orphan.pid) or orphan.poll() is not None
    finally:
        stop_process(orphan, 10)
