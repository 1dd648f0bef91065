"""The worker pool: warm start, concurrency, start failures, shutdown, orphaned workers."""

from __future__ import annotations

import os
import re
import select
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from worker_fixtures import fresh_pool, no_leaked_workers, pid_gone, wait_until

from conveyor_sgl.runtime.session import ToolSession
from conveyor_sgl.runtime.workers.pool import (
    MAX_WORKERS_ENV,
    PoolBusyError,
    PoolClosedError,
    WorkerPool,
    default_max_workers,
    default_pool,
)
from conveyor_sgl.runtime.workers.process import WorkerStartError

pytestmark = pytest.mark.timeout(30)
_leaks = pytest.fixture(autouse=True, name="no_leaked_workers")(no_leaked_workers)
_pool = pytest.fixture(name="pool")(fresh_pool)

PY = sys.executable


def test_warm_acquire_is_much_faster_than_a_cold_start():
    with WorkerPool(size=0) as cold_pool:
        t = time.monotonic()
        cold_pool.acquire(timeout_s=10).close()
        cold_s = time.monotonic() - t
    with WorkerPool(size=1) as warm_pool:
        assert warm_pool.wait_ready(10)
        t = time.monotonic()
        handle = warm_pool.acquire(timeout_s=10)
        warm_s = time.monotonic() - t
        handle.close()
    assert warm_s < cold_s / 10, (warm_s, cold_s)


def test_acquire_hands_out_a_worker_and_starts_a_replacement(pool):
    assert pool.wait_ready(10)
    warm = pool.pids()
    handle = pool.acquire(timeout_s=10)
    assert handle.pid in warm and handle.exit_code() is None
    assert pool.wait_ready(10)  # back to two warm workers, plus the handed-out one
    assert len(pool.pids()) == 3
    handle.close()
    assert pid_gone(handle.pid) and handle.pid not in pool.pids()


def test_concurrent_acquire_from_threads(pool):
    handles, errors = [], []

    def take() -> None:
        try:
            handles.append(pool.acquire(timeout_s=15))
        except (WorkerStartError, PoolClosedError) as e:  # asserted below
            errors.append(e)

    threads = [threading.Thread(target=take) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    assert not errors
    assert len({h.pid for h in handles}) == 6
    assert all(h.exit_code() is None for h in handles)
    for handle in handles:
        handle.close()


@pytest.mark.timing
def test_the_pool_never_runs_more_than_max_workers():
    with WorkerPool(size=2, max_workers=3) as pool:
        held = [pool.acquire(timeout_s=10) for _ in range(3)]
        time.sleep(0.3)  # the filler must not start a warm one beyond the cap
        assert len(pool.pids()) == 3 and pool.in_use() == 3
        t = time.monotonic()
        with pytest.raises(PoolBusyError, match=r"all 3 tool workers stayed busy for 0\.3s"):
            pool.acquire(timeout_s=0.3)
        assert 0.3 <= time.monotonic() - t < 1.5
        for handle in held:
            handle.close()
        assert wait_until(lambda: pool.in_use() <= 2, 5)  # back to the warm ones only


def test_a_waiting_acquire_gets_the_slot_that_is_freed():
    with WorkerPool(size=0, max_workers=2) as pool:
        held = [pool.acquire(timeout_s=10) for _ in range(2)]
        got: list = []
        waiter = threading.Thread(target=lambda: got.append(pool.acquire(timeout_s=10)))
        waiter.start()
        time.sleep(0.3)
        assert not got, "acquire must wait while every slot is in use"
        held[0].close()
        waiter.join(10)
        assert len(got) == 1 and got[0].exit_code() is None
        assert len(pool.pids()) == 2
        for handle in (held[1], got[0]):
            handle.close()


def test_many_threads_share_a_small_pool_without_errors():
    with WorkerPool(size=1, max_workers=2) as pool:
        peak, errors, lock = [0], [], threading.Lock()

        def use_one() -> None:
            try:
                handle = pool.acquire(timeout_s=20)
            except WorkerStartError as e:  # asserted below
                errors.append(e)
                return
            with lock:
                peak[0] = max(peak[0], len(pool.pids()))
            time.sleep(0.05)
            handle.close()

        threads = [threading.Thread(target=use_one) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(25)
        assert not errors and 1 <= peak[0] <= 2


def test_max_workers_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv(MAX_WORKERS_ENV, "5")
    assert default_max_workers() == 5
    monkeypatch.setenv(MAX_WORKERS_ENV, "0")
    with pytest.raises(ValueError, match="at least 1, got 0"):
        default_max_workers()
    monkeypatch.setenv(MAX_WORKERS_ENV, "lots")
    with pytest.raises(ValueError, match="whole number, got 'lots'"):
        default_max_workers()


def test_shutdown_ends_every_worker_and_is_idempotent():
    pool = WorkerPool(size=2)
    assert pool.wait_ready(10)
    handle = pool.acquire(timeout_s=10)  # handed out and never closed by its user
    pids = pool.pids()
    assert len(pids) >= 2 and handle.pid in pids
    pool.shutdown()
    assert all(pid_gone(pid) for pid in pids)
    assert pool.pids() == []
    pool.shutdown()
    with pytest.raises(PoolClosedError):
        pool.acquire(timeout_s=1)
    handle.close()


@pytest.mark.timing
def test_shutdown_escalates_to_sigkill(pool):
    session = ToolSession("stubborn", pool=pool)  # its executor ignores SIGTERM, hangs in feed
    session.feed_text("x\n")
    time.sleep(0.3)
    t = time.monotonic()
    pool.shutdown(grace_s=0.2)
    assert time.monotonic() - t < 3.0
    error = session.result(timeout_s=5).error
    # The worker (our code) ends at SIGTERM and takes its executor with it.
    assert re.match(r"tool worker exited with code -(15|9) \(killed by SIG(TERM|KILL)", error)


def test_a_worker_that_crashes_on_start_is_a_clear_error():
    command = [PY, "-c", "import os; os._exit(3)"]
    error = "exited with code 3 before it was ready"
    with WorkerPool(size=0, command=command) as pool, pytest.raises(WorkerStartError, match=error):
        pool.acquire(timeout_s=10)


@pytest.mark.timing
def test_a_worker_that_never_says_ready_fails_at_the_deadline():
    command = [PY, "-c", "import time; time.sleep(60)"]
    with WorkerPool(size=0, command=command, start_timeout_s=0.5) as pool:
        t = time.monotonic()
        with pytest.raises(WorkerStartError, match=r"no ready within 0\.5s"):
            pool.acquire(timeout_s=10)
        assert time.monotonic() - t < 2.0


def test_failed_warm_starts_are_recorded_and_acquire_still_reports():
    with WorkerPool(size=1, command=[PY, "-c", "raise SystemExit(4)"]) as pool:
        assert wait_until(lambda: pool.last_error is not None, 10)
        assert "exited with code 4" in pool.last_error
        with pytest.raises(WorkerStartError, match="exited with code 4"):
            pool.acquire(timeout_s=10)


def test_a_warm_worker_that_died_is_replaced(pool):
    assert pool.wait_ready(10)
    for pid in pool.pids():
        os.kill(pid, signal.SIGKILL)
    handle = pool.acquire(timeout_s=10)
    assert handle.exit_code() is None
    handle.close()


def test_default_pool_is_shared_and_recreated_after_shutdown():
    pool = default_pool()
    assert default_pool() is pool
    pool.shutdown()
    assert default_pool() is not pool


RUNTIME_SCRIPT = textwrap.dedent(
    """
    import sys, time
    from conveyor_sgl.runtime.workers.pool import WorkerPool
    from conveyor_sgl.runtime.session import ToolSession
    from worker_fixtures import register_test_tools

    register_test_tools()
    pool = WorkerPool(size=2)
    assert pool.wait_ready(10)
    session = ToolSession("hang", pool=pool)
    session.feed_text("hang\\n")  # this worker is busy in tool code when the runtime dies
    time.sleep(0.2)
    print(" ".join(map(str, pool.pids())), flush=True)
    time.sleep(60)
    """
)


def test_workers_exit_when_the_runtime_is_killed():
    tests_dir = str(Path(__file__).parents[1])
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([tests_dir, os.getcwd()]))
    runtime = subprocess.Popen([PY, "-c", RUNTIME_SCRIPT], stdout=subprocess.PIPE, env=env)
    try:
        ready, _, _ = select.select([runtime.stdout], [], [], 20)
        pids = [int(p) for p in runtime.stdout.readline().split()] if ready else []
        assert len(pids) == 3, "the runtime did not report its workers"
        assert not any(pid_gone(pid) for pid in pids)
    finally:
        runtime.kill()
        runtime.wait()
        runtime.stdout.close()
    assert wait_until(lambda: all(pid_gone(pid) for pid in pids), timeout_s=5)


def test_warm_workers_preload_the_tools_of_recent_sessions(pool):
    def run_probe() -> str:
        with ToolSession("tools_for_tests:PreloadProbeTool", pool=pool) as session:
            session.end_input()
            return session.result(timeout_s=10).output

    assert pool.wait_ready(10)
    assert run_probe() == "preloaded=False"  # started before the pool had seen the tool
    assert pool.wait_ready(10)
    run_probe()  # the second warm worker was also started before the first session
    assert pool.wait_ready(10)
    assert run_probe() == "preloaded=True"
