"""The session executor against code that attacks it, in client mode (a real worker pool).

Each program switches off what Python-level defences it can reach, then tries to borrow a
thread that was started before confinement, find the runtime's objects in memory, reach files,
processes and sockets outside its session, forge messages to the runtime, fill the disk and
call what the syscall baseline refuses. Each test asserts the effect did not happen.
"""

from __future__ import annotations

import os
import platform
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator

import escape_corpus
import psutil
import pytest
from worker_fixtures import no_leaked_workers, pid_gone, wait_until

from conveyor_sgl import run_tool
from conveyor_sgl.runtime.sandbox.layers import DISABLE_ENV, kernel_layers
from conveyor_sgl.runtime.workers.pool import WorkerPool

pytestmark = [
    pytest.mark.timeout(90),
    pytest.mark.skipif(
        sys.platform != "linux" or os.geteuid() != 0 or "landlock" not in kernel_layers(),
        reason="the kernel layers need Linux, root and Landlock",
    ),
]
_leaks = pytest.fixture(autouse=True, name="no_leaked_workers")(no_leaked_workers)

SMALL = {"cpu_s": 10, "memory_bytes": 1 << 30}
SECRET = f"hunter2-{uuid.uuid4().hex}"


@pytest.fixture(name="pool")
def _pool() -> Iterator[WorkerPool]:
    with WorkerPool(size=1) as pool:
        pool.wait_ready(10)
        yield pool


def lines_of(output: str) -> dict[str, str]:
    return {line.split(" ", 1)[0]: line for line in output.splitlines() if " " in line}


def run(pool: WorkerPool, code: str, **limits: object):
    result = run_tool("python", code, pool=pool, timeout=60, limits={**SMALL, **limits})
    return result, lines_of(result.output)


def test_no_thread_to_borrow_and_no_runtime_object_in_memory(pool):
    result, said = run(pool, escape_corpus.threads_and_memory())
    assert said["THREADS"].endswith("'1'"), said["THREADS"]  # the kernel's count
    assert said["PYTHREADS"] == "PYTHREADS OK ['MainThread']"
    # Whether or not the hook let gc through, no ZeroMQ context, socket or runtime channel.
    assert "zmq" not in said["GC"] and "Channel" not in said["GC"], said["GC"]
    assert said["GLOBALS"] == "GLOBALS OK []" and said["ZMQINSTANCE"] == "ZMQINSTANCE OK None"
    assert "audit" not in (result.sandbox or [])  # never reported as a layer


@pytest.fixture(name="secret_file")
def _secret_file() -> Iterator[str]:
    # In the directory the runtime was started from: readable by sys.path, never by tools.
    path = os.path.join(os.getcwd(), f".escape-secret-{uuid.uuid4().hex}")
    with open(path, "w") as f:
        f.write(SECRET)
    os.chmod(path, 0o600)
    yield path
    os.unlink(path)


def test_nothing_outside_the_session_is_reachable(pool, secret_file, tmp_path):
    outside = str(tmp_path / "pwned")
    victim = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    listener = socket.create_server(("127.0.0.1", 0))
    listener.setblocking(False)
    try:
        code = escape_corpus.reach_outside(
            secret_file, outside, listener.getsockname()[1], victim.pid
        )
        result, said = run(pool, code)
        assert SECRET not in result.output and not os.path.exists(outside)
        with pytest.raises(BlockingIOError):
            listener.accept()
        assert victim.poll() is None
        assert said["SIGNAL"].startswith("SIGNAL REFUSED")
        assert said["ENVIRON"].startswith("ENVIRON REFUSED")
        assert said["PARENT"] == "PARENT OK 1"  # its namespace's init: nothing else to name
        assert {"pidns", "proc", "netns", "landlock", "caps", "syscalls"} <= set(result.sandbox)
    finally:
        victim.kill()
        victim.wait()
        listener.close()


def test_the_working_directory_home_and_checkout_are_not_readable(pool):
    checkout = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    code = escape_corpus.TRY + "\n".join(
        f"attempt({name!r}, lambda: open({path!r}).read()[:20])"
        for name, path in {
            "CHECKOUT": os.path.join(checkout, "pyproject.toml"),
            "HOME": os.path.join(os.path.expanduser("~"), ".bashrc"),
            "CWD": os.path.join(os.getcwd(), "README.md"),
        }.items()
    )
    _, said = run(pool, code + "\n")
    for name in ("CHECKOUT", "HOME", "CWD"):
        assert f"{name} REFUSED" in said[name], said[name]


def test_a_forged_result_cannot_claim_layers(pool):
    # The executor is the tool's process: what it says is the tool's output, as a print
    # would be. What it cannot say is which layers confined it.
    result, _ = run(pool, escape_corpus.forge_messages(flood=False))
    assert "made-up" not in result.sandbox
    assert {"landlock", "caps", "pidns"} <= set(result.sandbox)


def test_a_flood_past_the_frame_cap_ends_the_session_and_is_never_held(pool):
    before = psutil.Process().memory_info().rss
    start = time.monotonic()
    result, _ = run(pool, escape_corpus.forge_messages(flood=True))
    assert time.monotonic() - start < 30
    assert result.status == "error", result
    assert "broke the worker protocol" in result.error and "cap" in result.error
    # The runtime never held the 400 MiB frame the tool announced.
    assert psutil.Process().memory_info().rss - before < 100 << 20


def test_the_disk_a_session_fills_is_bounded_and_gone_afterwards(pool):
    code = escape_corpus.TRY + (
        "def fill():\n"
        "    for i in range(40):\n"
        "        with open(f'f{i}', 'wb') as f:\n"
        "            f.write(b'x' * (16 << 20))\n"
        "attempt('FILL', fill)\n"
    )
    result, said = run(pool, code, disk_bytes=64 << 20, memory_bytes=2 << 30)
    assert "FILL REFUSED OSError" in said["FILL"] and "No space left" in said["FILL"]
    assert "disk" in result.sandbox
    assert [name for name in os.listdir(pool._dir) if name.endswith(".work")] == []


@pytest.mark.skipif(platform.machine() != "x86_64", reason="x86_64 syscall numbers")
def test_the_syscall_baseline_holds_with_the_hook_switched_off(monkeypatch):
    # The hook refuses ctypes; an attacker who got past it is what the workers see with the
    # hook disabled (read when the pool's fork server starts, after this).
    monkeypatch.setenv(DISABLE_ENV, "audit")
    with WorkerPool(size=0) as pool:
        result, said = run(pool, escape_corpus.syscalls())
    assert "syscalls" in result.sandbox
    for name in ("USERNS", "MOUNT", "IOURING", "PTRACE", "BPF"):
        assert "ALLOWED" not in said[name], said[name]


@pytest.mark.parametrize("tool, text", [("sql", "SELECT 1;"), ("calculator", "1 + 2\n")])
def test_tools_that_read_request_input_are_confined_by_the_kernel(pool, tool, text):
    result = run_tool(tool, text, pool=pool, timeout=30)
    assert result.status == "ok", result.error
    assert {"landlock", "caps", "netns", "pidns", "syscalls"} <= set(result.sandbox)


def test_a_worker_killed_from_outside_takes_its_executor_with_it(pool):
    handle = pool.acquire(timeout_s=10)
    executors = [c.pid for c in psutil.Process(handle.pid).children(recursive=True)]
    assert executors  # PID 1 of the session's namespace (and the executor under it)
    os.kill(handle.pid, 9)
    assert wait_until(lambda: all(pid_gone(pid) for pid in executors), 5)
    handle.close()


def test_raw_writes_to_stderr_cannot_flood_the_servers_log(capfd):
    code = "import os\nfor _ in range(64):\n    os.write(2, b'x' * 16384)\nprint('wrote')\n"
    with WorkerPool(size=0) as pool:  # started here: its workers write to the captured fd 2
        result, _ = run(pool, code)
    assert result.status == "ok" and result.output == "wrote\n"
    logged = capfd.readouterr().err
    assert 64 << 10 <= logged.count("x") <= (64 << 10) + 100  # 1 MiB written, 64 KiB kept
    assert "tool output to stderr truncated" in logged
