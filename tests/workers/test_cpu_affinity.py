"""CPU lists and pinning: the split that keeps tool work off the serving cores."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from conveyor_sgl.runtime.workers.cpu_affinity import (
    TOOL_CPUS_ENV,
    format_cpus,
    move_to_tool_cpus,
    parse_cpus,
)
from eval.serving import cpu_split

pytestmark = pytest.mark.timeout(60)
LAST = (os.cpu_count() or 1) - 1


def test_cpu_lists_parse_ranges_and_singles():
    assert parse_cpus("0") == {0}
    assert parse_cpus(f"0-{LAST}") == set(range(LAST + 1))
    assert format_cpus(parse_cpus(f"{LAST},0")) == ",".join(map(str, sorted({0, LAST})))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("x", "'x' is not N or N-M"),
        ("3-1", "'3-1' is not an ascending range"),
        ("4096", r"names CPUs \[4096\]; this host has 0-"),
    ],
)
def test_bad_cpu_lists_are_errors_naming_the_part(text, message):
    with pytest.raises(ValueError, match=message):
        parse_cpus(text)


def test_a_pinned_child_and_the_threads_it_starts_run_where_asked():
    code = (
        "import os, threading; from conveyor_sgl.runtime.workers.cpu_affinity import pin_from_env\n"
        "pin_from_env(); seen = []\n"
        "t = threading.Thread(target=lambda: seen.append(os.sched_getaffinity(0))); t.start()\n"
        "t.join(); print(sorted(seen[0]))"
    )
    env = dict(os.environ, **{TOOL_CPUS_ENV: str(LAST)})
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         timeout=30, check=True).stdout  # fmt: skip
    assert out.strip() == f"[{LAST}]"


def test_a_tool_worker_pins_itself_from_the_environment(monkeypatch):
    from conveyor_sgl.runtime.run_tool import run_tool
    from conveyor_sgl.runtime.workers.pool import WorkerPool

    monkeypatch.setenv(TOOL_CPUS_ENV, str(LAST))
    code = "import os\nprint(sorted(os.sched_getaffinity(0)))\n"
    with WorkerPool(size=0) as pool:  # workers started after the variable was set
        result = run_tool("python", code, pool=pool, limits={"cpu_s": 10})
    assert (result.status, result.output) == ("ok", f"[{LAST}]\n")


def test_a_started_child_is_moved_to_the_tool_cpus_at_once(monkeypatch):
    # What spawn_worker does, so a worker started by the server does not start up on its CPUs.
    monkeypatch.setenv(TOOL_CPUS_ENV, str(LAST))
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        move_to_tool_cpus(proc.pid)
        assert os.sched_getaffinity(proc.pid) == {LAST}
    finally:
        proc.kill()
        proc.wait(10)
    move_to_tool_cpus(proc.pid)  # gone: nothing to move, no error


def test_the_eval_split_gives_tools_the_last_cpu():
    if LAST == 0:
        assert cpu_split("auto") is None  # one CPU: nothing to split
        return
    server, tools = cpu_split("auto")
    assert tools == str(LAST) and parse_cpus(server) == set(range(LAST))
    assert cpu_split("none") is None
    with pytest.raises(ValueError, match="share CPUs"):
        cpu_split("0:0")
