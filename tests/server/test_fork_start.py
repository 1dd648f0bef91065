"""SGLang's CPU server processes start by fork where our launch plans ask for it: the hook in a
fresh interpreter each (it changes process-wide state), its registration, the plan, and the
session's server."""

from __future__ import annotations

import subprocess
import sys

import psutil
import pytest

from conveyor_sgl.runtime.embedded.launcher import plan_launch
from conveyor_sgl.runtime.server import fork_start

START = """
import multiprocessing, threading
from conveyor_sgl.runtime.server import fork_start
if {thread}:
    threading.Thread(target=threading.Event().wait, daemon=True).start()
multiprocessing.set_start_method("spawn", force=True)  # SGLang's own choice
print(fork_start.start_by_fork(multiprocessing.get_start_method))
print(multiprocessing.get_start_method())
"""


def _start(thread: bool) -> tuple[list[str], str]:
    done = subprocess.run(
        [sys.executable, "-c", START.format(thread=thread)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.split(), done.stderr


def test_processes_start_by_fork_then_the_method_is_put_back():
    (during, after), said = _start(thread=False)
    assert (during, after) == ("fork", "spawn") and fork_start.FORKED in said


def test_a_second_thread_keeps_spawn():
    (during, after), said = _start(thread=True)
    assert (during, after) == ("spawn", "spawn") and "2 threads are running" in said


THREADS = """
import multiprocessing, os, torch
from conveyor_sgl.runtime.server import fork_start
own = torch.get_num_threads()  # read from the environment at import
os.environ["OMP_NUM_THREADS"] = str(own + 1)  # as a launch plan sets it, after the import
def child(conn):
    conn.send(torch.get_num_threads())
def start():
    parent, end = multiprocessing.Pipe()
    proc = multiprocessing.Process(target=child, args=(end,))
    proc.start()
    got = parent.recv()
    proc.join(30)
    return got
print(own, fork_start.start_by_fork(start), torch.get_num_threads())
"""


def test_a_forked_child_has_the_torch_threads_a_spawned_one_would_read():
    done = subprocess.run(
        [sys.executable, "-c", THREADS], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    own, child, after = map(int, done.stdout.split())
    assert (child, after) == (own + 1, own)  # the environment's count, then ours put back


def test_cpu_plans_ask_for_it_unless_the_environment_says():
    def env(environ: dict[str, str], has_gpu: bool = False) -> dict[str, str]:
        return plan_launch([], has_gpu=has_gpu, environ=environ, default_model_path=str).env

    assert env({})[fork_start.FORK_ENV] == "1"
    assert fork_start.FORK_ENV not in env({fork_start.FORK_ENV: "0"})
    assert fork_start.FORK_ENV not in env({}, has_gpu=True)
    assert fork_start.wanted({fork_start.FORK_ENV: "1"})
    assert not fork_start.wanted({fork_start.FORK_ENV: "0"}) and not fork_start.wanted({})


@pytest.fixture
def hooks():
    from sglang.srt.plugins.hook_registry import HookRegistry

    saved = {target: list(entries) for target, entries in HookRegistry._hooks.items()}
    yield HookRegistry._hooks
    HookRegistry._hooks.clear()
    HookRegistry._hooks.update(saved)


def test_it_hooks_where_sglang_starts_its_processes_once(hooks):
    fork_start.register()
    fork_start.register()
    for target in fork_start.TARGETS:
        assert [h for _, h, _ in hooks[target]].count(fork_start.start_by_fork) == 1


@pytest.mark.server
def test_the_session_server_forked_its_processes(flagged_server):
    assert fork_start.FORKED in flagged_server.log_path.read_text(errors="replace")
    names = [" ".join(psutil.Process(pid).cmdline()) for pid in flagged_server.group_pids()]
    assert any("sglang::scheduler" in name for name in names), names
    # Spawned children start through multiprocessing's spawn_main, with a resource tracker.
    assert not any("spawn_main" in name or "resource_tracker" in name for name in names), names
