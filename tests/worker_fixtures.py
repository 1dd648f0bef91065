"""Fixture bodies shared by the runtime tests (kept out of tools_for_tests, which workers import).

A test module turns them into fixtures with ``pytest.fixture(name=...)(function)``, so that
nothing here applies to tests that do not ask for it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import psutil
import tools_for_tests as tt

from conveyor_sgl.runtime.workers.pool import WorkerPool, shutdown_default_pool
from conveyor_sgl.tools.registry import register_tool

TEST_TOOLS = {
    "echo": tt.EchoTool,
    "batch_echo": tt.BatchEchoTool,
    "crash_on_start": tt.CrashOnStartTool,
    "hang": tt.HangTool,
    "die_mid_session": tt.DieMidSessionTool,
    "raising": tt.RaisingTool,
    "aborting": tt.AbortingTool,
    "probe": tt.ProbeTool,
    "memory_hog": tt.MemoryHogTool,
    "cpu_burn": tt.CpuBurnTool,
    "bad_output": tt.BadOutputTool,
    "json_echo": tt.JsonEchoTool,
    "stubborn": tt.StubbornTool,
}


def register_test_tools() -> None:
    for name, tool_class in TEST_TOOLS.items():
        register_tool(name, tool_class)


def fresh_pool() -> Iterator[WorkerPool]:
    register_test_tools()
    with WorkerPool(size=2) as pool:
        pool.wait_ready(10)  # so that tests measure sessions, not process start-up
        yield pool
    assert pool.pids() == [], "workers left after pool.shutdown()"


def no_leaked_workers() -> Iterator[None]:
    """Every process a test starts must be gone (and reaped) when the test ends."""
    before = {child.pid for child in psutil.Process().children(recursive=True)}
    yield
    shutdown_default_pool()
    leaked = _new_children(before, timeout_s=2.0)
    for child in leaked:
        try:
            child.kill()
        except psutil.NoSuchProcess:
            pass  # it ended just now: still a leak, reported below
    assert not leaked, f"processes left running by the test: {leaked}"


def _new_children(before: set[int], timeout_s: float) -> list[psutil.Process]:
    """Processes the test started and left: new descendants of this process, except those
    of processes that were there before it (a session's server starts and ends tool workers
    of its own while tests run). Zombies count: a process never waited for was not ended."""
    deadline = time.monotonic() + timeout_s
    while True:
        new = [
            child
            for child in psutil.Process().children(recursive=True)
            if child.pid not in before and not _descends_from(child, before)
        ]
        if not new or time.monotonic() >= deadline:
            return new
        time.sleep(0.02)


def _descends_from(proc: psutil.Process, pids: set[int]) -> bool:
    try:
        return any(parent.pid in pids for parent in proc.parents())
    except psutil.NoSuchProcess:
        return False


def pid_gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def wait_until(predicate, timeout_s: float, interval_s: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval_s)
    return True
