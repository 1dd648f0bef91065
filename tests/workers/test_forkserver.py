"""The fork server: workers forked from one pre-imported process, watched like our own."""

from __future__ import annotations

import os
import signal

import psutil
import pytest
from worker_fixtures import fresh_pool, no_leaked_workers, pid_gone, wait_until

from conveyor_sgl.runtime.run_tool import run_tool
from conveyor_sgl.runtime.session import ToolSession
from conveyor_sgl.runtime.workers.forkserver_client import ForkedProcess

pytestmark = pytest.mark.timeout(30)
_leaks = pytest.fixture(autouse=True, name="no_leaked_workers")(no_leaked_workers)
_pool = pytest.fixture(name="pool")(fresh_pool)


def _forkserver_pid(pool) -> int:
    assert pool._forkserver is not None
    return pool._forkserver.proc.pid


def test_workers_are_forked_by_the_pools_fork_server(pool):
    handle = pool.acquire(timeout_s=10)
    try:
        assert isinstance(handle.proc, ForkedProcess)
        worker = psutil.Process(handle.pid)
        assert worker.ppid() == _forkserver_pid(pool)
        # Each worker leads its own process group, as a Popen(start_new_session=True) did.
        assert os.getpgid(handle.pid) == handle.pid
    finally:
        handle.close()
    assert pid_gone(handle.pid) and handle.exit_code() is not None


def test_a_killed_worker_reports_its_signal(pool):
    handle = pool.acquire(timeout_s=10)
    os.kill(handle.pid, signal.SIGKILL)
    assert handle.proc.wait(timeout=5) == -signal.SIGKILL
    handle.close()


def test_a_session_sees_its_forked_worker_die(pool):
    session = ToolSession("die_mid_session", pool=pool)
    session.feed_text("a\nb\n")  # it exits with code 5 in its second feed
    result = session.result(timeout_s=10)
    assert (result.status, result.error) == ("error", "tool worker exited with code 5")


def test_the_pool_replaces_a_fork_server_that_died(pool):
    warm = pool.pids()
    os.kill(_forkserver_pid(pool), signal.SIGKILL)
    # Its workers watch it and go; the pool forks new ones from a new fork server.
    assert wait_until(lambda: all(pid_gone(pid) for pid in warm), timeout_s=5)
    result = run_tool("echo", "still works\n", pool=pool)
    assert (result.status, result.output) == ("ok", "STILL WORKS")


def test_forked_workers_do_not_share_random_state(pool):
    code = "import random\nprint(random.getrandbits(64))\n"
    outputs = {run_tool("python", code, pool=pool).output for _ in range(3)}
    assert len(outputs) == 3, outputs


def test_shutdown_ends_the_fork_server_and_its_workers(pool):
    handle = pool.acquire(timeout_s=10)
    server_pid = _forkserver_pid(pool)
    pids = pool.pids()
    pool.shutdown(grace_s=0.2)
    assert pid_gone(server_pid)
    assert all(pid_gone(pid) for pid in pids)
    handle.close()


def test_the_fork_server_wire_is_typed_both_ways():
    from conveyor_sgl.runtime.workers.forkserver_messages import (
        Exited,
        Forked,
        ForkRequest,
        decode_reply,
        decode_request,
        encode_line,
    )
    from conveyor_sgl.runtime.workers.messages import MessageError

    request = ForkRequest(id=3, endpoint="ipc:///x", preload=("a:B", "c:D"))
    assert decode_request(encode_line(request)) == request
    for reply in (Forked(id=3, pid=42, preloaded=("a:B",)), Exited(pid=42, code=-9)):
        assert decode_reply(encode_line(reply)) == reply
    for bad in (b'{"id": 1}', b'{"id": 1, "endpoint": "x", "extra": 1}', b"not json"):
        with pytest.raises(MessageError):
            decode_request(bad)
    with pytest.raises(MessageError):
        decode_reply(b'{"type": "forked", "id": 1}')
