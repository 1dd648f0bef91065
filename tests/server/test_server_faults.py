"""Faults in both modes: the same program frees its tool worker as fast in server mode as in
client mode when the result times out, is never taken, its program fails, or its client dies.

The tool sleeps for ten minutes, so a worker that ends within the test's deadline was ended
by the runtime. Workers are single-use: a worker seen during the call that is gone after it
is the call's own. Client mode's workers are this process's pool; server mode's are the
server's (``GET /conveyor/info``'s ``worker_pids``).
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest
import requests
import sglang as sgl

from conveyor_sgl import partial_tool, tool_result
from conveyor_sgl.runtime.workers.pool import default_pool
from programs.code_solver import forced

pytestmark = [pytest.mark.server, pytest.mark.timeout(240)]

MODES = ["client", "server"]
ENDLESS = "import time\ntime.sleep(600)\n"
REGEX = forced(ENDLESS, "```")
ROOT = Path(__file__).resolve().parents[2]


@sgl.function
def waits(s, mode, timeout):
    s += "Code:\n" + partial_tool(
        "code", tool="python", mode=mode, stop="```", max_tokens=48, regex=REGEX
    )
    s += tool_result("code", timeout=timeout)


@sgl.function
def never_takes(s, mode):
    s += "Code:\n" + partial_tool(
        "code", tool="python", mode=mode, stop="```", max_tokens=48, regex=REGEX
    )


@sgl.function
def fails_after(s, mode):
    s += "Code:\n" + partial_tool(
        "code", tool="python", mode=mode, stop="```", max_tokens=48, regex=REGEX
    )
    if s["code"] is not None:  # a read first: the check before the run cannot see past it
        s += tool_result("not_a_tool_of_this_program")  # fails in the executor
    s += tool_result("code")


class Workers:
    """Watches the live workers of one mode: every pid seen, and which of them are gone."""

    def __init__(self, pids: Callable[[], list[int]]) -> None:
        self._pids = pids
        self.seen: set[int] = set(pids())
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        while not self._stop.wait(0.05):
            self.seen |= set(self._pids())

    def gone_within(self, seconds: float) -> set[int]:
        """The seen workers that are gone, waiting up to ``seconds`` for at least one."""
        self._stop.set()
        self._thread.join(timeout=5)
        deadline = time.monotonic() + seconds
        while True:
            gone = self.seen - set(self._pids())
            if gone or time.monotonic() >= deadline:
                return gone
            time.sleep(0.05)


def worker_pids(mode: str, url: str) -> Callable[[], list[int]]:
    if mode == "client":
        return default_pool().pids
    return lambda: requests.get(url + "/conveyor/info", timeout=10).json()["worker_pids"]


@pytest.fixture(name="runtime")
def _runtime(flagged_server):
    return sgl.RuntimeEndpoint(flagged_server.url)


@pytest.mark.timing
@pytest.mark.parametrize("mode", MODES)
def test_a_result_timeout_is_honoured_and_ends_the_worker(flagged_server, runtime, mode):
    workers = Workers(worker_pids(mode, flagged_server.url))
    start = time.monotonic()
    state = waits.run(mode=mode, timeout=2, backend=runtime)
    tool = state.get_meta_info("code")["tool"]  # waits for tool_result
    took = time.monotonic() - start
    assert state.error() is None and state["code"] == ENDLESS, state.error()
    assert tool["mode"] == mode and tool["status"] == "timeout", tool
    assert tool["error"] == "tool 'python' returned no result within 2s"
    waited = tool["result_ready_at"] - tool["decode_finished_at"]
    assert 1.9 <= waited < 3.0, tool
    assert took < tool["decode_finished_at"] + 3.0, (took, tool)
    assert len(workers.gone_within(1.0)) == 1, workers.seen


@pytest.mark.parametrize("mode", MODES)
def test_a_result_never_taken_frees_the_worker(flagged_server, runtime, mode):
    workers = Workers(worker_pids(mode, flagged_server.url))
    state = never_takes.run(mode=mode, backend=runtime)
    assert state.error() is None and state["code"] == ENDLESS
    # The state is still referenced: only the program's end can have ended the tool.
    assert len(workers.gone_within(2.0)) == 1, workers.seen


@pytest.mark.parametrize("mode", MODES)
def test_a_program_that_failed_frees_the_worker(flagged_server, runtime, mode):
    workers = Workers(worker_pids(mode, flagged_server.url))
    state = fails_after.run(mode=mode, backend=runtime)
    assert "has no partial_tool('not_a_tool_of_this_program')" in str(state.error())
    assert len(workers.gone_within(2.0)) == 1, workers.seen
    assert state.text().startswith("Code:\n" + ENDLESS)  # the state is still here


@pytest.mark.parametrize("when", ["decoding", "waiting"])
@pytest.mark.parametrize("mode", MODES)
def test_a_killed_client_frees_its_tool(flagged_server, mode, when):
    url = flagged_server.url
    client = subprocess.Popen(
        [sys.executable, str(ROOT / "tests" / "fault_client.py"), url, mode, when],
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        cwd=ROOT,
    )
    try:
        # Client mode's workers are the client's own children; server mode's the server's.
        pids = worker_pids(mode, url) if mode == "server" else _children(client.pid)
        workers = Workers(pids)
        assert _ready(client, 90), "the client never reached the point to kill it at"
        workers.seen |= set(pids())
        client.kill()
        client.wait(timeout=10)
        if mode == "client":  # the client's workers watch it and die with it, all of them
            dead = _Dead(workers.seen)
            assert dead.gone_within(2.0) == workers.seen != set()
        else:  # the call's own worker, and no other
            assert len(workers.gone_within(2.0)) == 1, workers.seen
    finally:
        if client.poll() is None:
            client.kill()
            client.wait(timeout=10)
        client.stdout.close()
    if mode == "server":  # the server serves on, and the next call gets a worker at once
        info = requests.get(url + "/conveyor/info", timeout=10).json()
        assert info["worker_pids"]


def _ready(client: subprocess.Popen, timeout_s: float) -> bool:
    result: list[bytes] = []
    reader = threading.Thread(target=lambda: result.append(client.stdout.readline()))
    reader.daemon = True
    reader.start()
    reader.join(timeout_s)
    return bool(result) and result[0].strip() == b"ready"


def _children(pid: int) -> Callable[[], list[int]]:
    def pids() -> list[int]:
        try:
            return [p.pid for p in psutil.Process(pid).children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    return pids


class _Dead:
    """Client mode after the kill: which of the client's workers no longer run."""

    def __init__(self, seen: set[int]) -> None:
        self.seen = seen

    def gone_within(self, seconds: float) -> set[int]:
        deadline = time.monotonic() + seconds
        while True:
            gone = {pid for pid in self.seen if not _alive(pid)}
            if gone == self.seen or time.monotonic() >= deadline:
                return gone
            time.sleep(0.05)


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
