"""Shared fixtures: one real SGLang CPU server per test session, and a leak check.

`make test` runs two pytest-xdist workers: the tests that need one of the session's servers
run on one worker (``pytest_itemcollected`` below), so it still starts once; the rest, tests
that start a server of their own included, go a test file at a time to whichever worker is
free.

Starting a server costs 15-30 s of this host's two cores, so every test that can shares the
one ``flagged_server``: client-mode tests (a stock server's routes are all there), server
mode, the OpenAI API (its tool-call parser on), the launcher's own checks; the tests of an
operator's policy and of the metrics share one ``policed_server``; the sgl.Runtime tests and
the router (in front of it and ``flagged_server``) share one ``runtime_server``. Only tests of
other launch settings (caps, sglang serve, a plain sgl.Runtime, a small KV pool) start their
own."""

from __future__ import annotations

import contextlib
import os
import shlex
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import pytest
from worker_fixtures import pid_gone

TESTS_DIR = os.path.dirname(os.path.abspath(__file__))
MCP_TOOLS_SERVER = os.path.join(TESTS_DIR, "mcp_servers", "tools_server.py")
FLAGGED_FLAGS = [
    "--tool-partial-execution",
    "--tool-allow-import-targets",  # the test tools travel as "module:Class" targets
    "--tool-max-sessions-per-client",  # every test program comes from this one client
    "64",
    "--tool-call-parser",  # the OpenAI API's tool calls
    "qwen25",
    "--tool-mcp-server",  # the operator's MCP server (started confined): "mcp/tools/<tool>"
    f"tools={shlex.join([sys.executable, MCP_TOOLS_SERVER])}",
]


# Each session server's tests form one xdist group, so the server starts on one worker only.
# Fixtures that ask for a server at run time (getfixturevalue) are named too: server_url
# (flagged_server), test_sgl_runtime's runtime (runtime_server). The router's tests use
# flagged_server and runtime_server at once, so those two share a group.
SERVER_GROUPS = {
    "flagged_server": "flagged-server",
    "server_url": "flagged-server",
    "runtime_server": "flagged-server",
    "runtime": "flagged-server",
    "policed_server": "policed-server",
}


# The two longest users of flagged_server (minutes together) form a group of their own: the
# worker that runs them starts a second flagged_server, beside the first one's group.
OWN_FLAGGED_SERVER = ("tests/eval/test_benchmark.py", "tests/eval/test_eval_notebook.py")


def pytest_itemcollected(item: pytest.Item) -> None:
    """The group of the session server a test uses (directly or through other fixtures),
    else its test file's (marked as each test is collected: xdist reads the groups when the
    collection ends)."""
    path = item.nodeid.split("::")[0]
    groups = sorted({SERVER_GROUPS[name] for name in item.fixturenames if name in SERVER_GROUPS})
    if groups == ["flagged-server"] and path in OWN_FLAGGED_SERVER:
        groups = ["eval-on-flagged-server"]
    item.add_marker(pytest.mark.xdist_group(groups[0] if groups else path))
    if item.get_closest_marker("timing") is not None:
        # Its check compares the clocks of processes (decoding, a tool worker) that two
        # busy cores may schedule a few hundred ms late: a second run, never a third.
        item.add_marker(pytest.mark.flaky(reruns=1))


# The session servers' groups in this order, first: the longest runs start at once on both
# workers, and the short file groups fill the tail (xdist hands groups out in this order:
# make test passes --no-loadscope-reorder).
FIRST_GROUPS = ("flagged-server", "eval-on-flagged-server", "policed-server")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The session servers' groups first, then the files that start a server of their own
    (marked ``server``), then the rest, each in file order."""
    starts_a_server = {_group(i) for i in items if i.get_closest_marker("server") is not None}

    def rank(item: pytest.Item) -> int:
        group = _group(item)
        if group in FIRST_GROUPS:
            return FIRST_GROUPS.index(group)
        return len(FIRST_GROUPS) + (group not in starts_a_server)

    items.sort(key=rank)  # stable: file order within each rank


def _group(item: pytest.Item) -> str:
    return item.get_closest_marker("xdist_group").args[0]  # every item's (itemcollected)


@pytest.fixture(scope="session")
def flagged_server():
    """The embedded default model (CPU) launched with ``--tool-partial-execution`` (both
    modes), started once; the tests/ directory is on its path for the test tools."""
    from conveyor_sgl.runtime.embedded.server_process import EmbeddedServer, group_pids

    tests_dir = os.path.dirname(os.path.abspath(__file__))
    with EmbeddedServer(extra_args=FLAGGED_FLAGS, env={"PYTHONPATH": tests_dir}) as server:
        yield server
        workers, group = _worker_pids(server.url), server.pid  # the group it leads
    # Stopping the server leaves nothing of its process group (HTTP server, scheduler,
    # detokenizer) and no tool worker behind (the warm pool included).
    assert group_pids(group) == [], "processes of the server outlived it"
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and not all(pid_gone(pid) for pid in workers):
        time.sleep(0.2)
    assert all(pid_gone(pid) for pid in workers), "tool workers outlived the server"


def _worker_pids(url: str) -> list[int]:
    import requests

    try:
        return list(requests.get(url + "/conveyor/info", timeout=10).json()["worker_pids"])
    except (requests.RequestException, ValueError, KeyError):
        return []  # the server is gone already: nothing to check here


POLICED_KEY = "test-key-123"
POLICED_AUTH = {"Authorization": f"Bearer {POLICED_KEY}"}
POLICED_TOOLS = "python,sql,validation,search,planner"  # not calculator
LAST_CPU = max(os.sched_getaffinity(0))
# Decoding on the first CPU, tools on the last, as `make benchmark` splits them (one CPU: none).
POLICED_CPU_FLAGS = ["--cpus", "0", "--tool-cpus", str(LAST_CPU)] if LAST_CPU > 0 else []


@dataclass
class Policed:
    """The session's server under an operator's policy: an API key, allowed tools, a files
    root; ``probes`` is on its path (a module that leaves ``mark`` when imported)."""

    server: Any
    base: Path
    root: Path
    mark: Path


@pytest.fixture(scope="session")
def policed_server(tmp_path_factory):
    from conveyor_sgl.runtime.embedded.server_process import EmbeddedServer

    base = tmp_path_factory.mktemp("policy")
    root, probes = base / "root", base / "probes"
    root.mkdir()
    probes.mkdir()
    mark = base / "imported.mark"
    (probes / "policy_probe_mod.py").write_text(
        f"open({str(mark)!r}, 'w').close()\n"
        "from conveyor_sgl.tools.base import Tool\n"
        "class Probe(Tool):\n    pass\n"
        "def run(**kw):\n    return 'ran'\n"
    )
    flags = ["--tool-partial-execution", "--api-key", POLICED_KEY, "--tool-allow", POLICED_TOOLS]
    flags += ["--tool-files-root", str(root), "--enable-metrics"]  # metrics: test_server_metrics
    flags += POLICED_CPU_FLAGS  # the launcher's CPU split, end to end (test_cpu_split_on_server)
    with EmbeddedServer(extra_args=flags, env={"PYTHONPATH": str(probes)}) as server:
        yield Policed(server, base, root, mark)


RUNTIME_ARGS = {"max_total_tokens": 4096, "max_running_requests": 8}  # the host is shared


@pytest.fixture(scope="session")
def runtime_server(spawn_helpers_end):
    """`start_runtime(tool_partial_execution=True)`: an sgl.Runtime in server mode."""
    from conveyor_sgl.runtime.embedded.sgl_runtime import start_runtime

    runtime = start_runtime(tool_partial_execution=True, launch_timeout=240, **RUNTIME_ARGS)
    try:
        yield runtime
    finally:
        shutdown_runtime(runtime)


@pytest.fixture(scope="session")
def spawn_helpers_end():
    """sgl.Runtime spawns its server, which starts multiprocessing's resource tracker in this
    process; it would otherwise live as long as pytest. Asked for by every fixture that starts
    a runtime, so torn down after all of them."""
    yield
    from multiprocessing import resource_tracker

    stop = getattr(resource_tracker._resource_tracker, "_stop", None)  # started on demand
    if stop is not None:
        stop()


def shutdown_runtime(runtime: Any) -> None:
    """Shut an sgl.Runtime down; return only when none of its processes is left (deadline)."""
    procs = []
    if runtime.pid:
        with contextlib.suppress(psutil.NoSuchProcess):
            root = psutil.Process(runtime.pid)
            procs = [root, *root.children(recursive=True)]
    runtime.shutdown()
    # Its __del__ calls shutdown again, maybe as Python exits, when its import would fail.
    runtime.shutdown = lambda: None
    _, alive = psutil.wait_procs(procs, timeout=30)
    for proc in alive:
        proc.kill()
    assert not alive, f"sgl.Runtime left processes running: {alive}"


@pytest.fixture(scope="session")
def server_url(request):
    """Where client-mode tests send their generations: ``$CONVEYOR_SGL_TEST_SERVER`` (a
    server the developer already runs), else the shared ``flagged_server``."""
    url = os.environ.get("CONVEYOR_SGL_TEST_SERVER")
    return url or request.getfixturevalue("flagged_server").url


def flush_when_idle(url: str, timeout_s: float = 60) -> None:
    """SGLang flushes its cache only with no request running or waiting: on a shared server
    another test's abandoned request may still be finishing, so retry until the deadline."""
    import requests

    deadline = time.monotonic() + timeout_s
    while requests.post(url + "/flush_cache", timeout=30).status_code != 200:
        assert time.monotonic() < deadline, f"{url} never idle enough to flush its cache"
        time.sleep(0.5)


@pytest.fixture(scope="session")
def backend(server_url):
    import sglang as sgl

    runtime = sgl.RuntimeEndpoint(server_url)
    sgl.set_default_backend(runtime)
    return runtime


@pytest.fixture(scope="session", autouse=True)
def no_process_outlives_the_suite():
    """After the whole suite, nothing this test run started may still be running."""
    yield
    from conveyor_sgl.runtime.workers.pool import shutdown_default_pool

    shutdown_default_pool()
    leftover = [p for p in psutil.Process().children(recursive=True) if _alive(p)]
    for proc in leftover:
        proc.kill()
    assert not leftover, f"processes left running by the test suite: {leftover}"


def _alive(proc: psutil.Process) -> bool:
    try:
        return proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
