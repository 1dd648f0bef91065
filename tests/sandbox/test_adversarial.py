"""Hostile tool input through ``run_tool("python", ...)`` in real workers, and bad input.

Each case must end with status ``error`` or ``timeout`` and a message naming what happened,
within its deadline, while a bystander session on the same pool gets its exact result.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from dataclasses import dataclass

import pytest
import zmq
from worker_fixtures import no_leaked_workers, register_test_tools

from conveyor_sgl import run_tool
from conveyor_sgl.runtime.session import ToolSession
from conveyor_sgl.runtime.workers.channel import Channel
from conveyor_sgl.runtime.workers.messages import Envelope, Error, Finish, Kind
from conveyor_sgl.runtime.workers.pool import WorkerPool

pytestmark = pytest.mark.timeout(60)
_leaks = pytest.fixture(autouse=True, name="no_leaked_workers")(no_leaked_workers)

SMALL = {"cpu_s": 2, "memory_bytes": 512 << 20}
SECRET = "hunter2-adversarial"
OUTSIDE = f"/tmp/conveyor-adversarial-{uuid.uuid4().hex}"
BYSTANDER = [
    "total = 0\n",
    "for i in range(5):\n",
    "    total += i\n",
    "print('bystander', total)\n",
]


@dataclass
class Case:
    code: str | list[str]
    status: str
    says: tuple[str, ...]  # the error contains one of these
    timeout_s: float = 15.0
    chunk_interval: float = 0.0


CORPUS = {
    "infinite_loop": Case("while True:\n    pass\n", "error", ("CPU time limit of 2 s exceeded",)),
    "hang_outside_the_interpreter": Case(
        "import time\ntime.sleep(600)\n", "timeout", ("returned no result within 3s",), 3.0
    ),
    "memory_bomb": Case(
        "blocks = []\nwhile True:\n    blocks.append(bytearray(50 << 20))\n",
        "error",
        ("MemoryError",),
    ),
    "fork_bomb": Case(
        "import os\nwhile True:\n    os.fork()\n", "error", ("sandbox: starting a process",)
    ),
    "subprocess_bomb": Case(
        "import subprocess, sys\nwhile True:\n    subprocess.Popen([sys.executable])\n",
        "error",
        ("sandbox: starting a process",),
    ),
    "output_flood": Case(
        "while True:\n    print('x' * 10000)\n", "error", ("CPU time limit of 2 s exceeded",)
    ),
    "deep_recursion": Case("def f(n):\n    return f(n + 1)\nf(0)\n", "error", ("RecursionError",)),
    "deep_recursion_without_a_limit": Case(
        "import sys\nsys.setrecursionlimit(10**8)\ndef f(n):\n    return f(n + 1)\nf(0)\n",
        "error",
        # Which limit hits first depends on the machine; the hard CPU limit's SIGKILL if
        # formatting a traceback of millions of frames outlasts the soft limit's grace second.
        ("MemoryError", "CPU time limit", "SIGSEGV", "SIGKILL: the hard CPU time limit"),
    ),
    "opening_a_socket": Case(
        "import socket\nsocket.create_connection(('example.com', 80), timeout=1)\n",
        "error",
        ("sandbox: name lookup",),
    ),
    "connecting_by_address": Case(
        "import socket\ns = socket.socket()\ns.connect(('10.0.0.1', 80))\n",
        "error",
        ("sandbox: opening a network socket",),
    ),
    "writing_outside_the_workdir": Case(
        f"open({OUTSIDE!r}, 'w').write('pwned')\n", "error", ("sandbox: writing",)
    ),
    "reading_the_environment_for_secrets": Case(
        "import os\nprint([v for v in os.environ.values() if 'hunter2' in v])\n"
        "print(open(f'/proc/{os.getppid()}/environ').read())\n",
        "error",
        ("sandbox: reading another process's",),
    ),
    "killing_the_parent": Case(
        "import os, signal\nos.kill(os.getppid(), signal.SIGKILL)\n",
        "error",
        ("sandbox: sending a signal to pid",),
    ),
    "killing_the_parents_group": Case(
        # The worker's group lies outside the executor's PID namespace: it has no name here.
        "import os\nassert os.getpgid(os.getppid()) == 0\nos.killpg(1, 9)\n",
        "error",
        ("sandbox: signalling process group",),
    ),
    "worker_dies_mid_stream": Case(
        ["print('before')\n", "import os; os._exit(3)\n", "print('after')\n", "print(1)\n"],
        "error",
        ("tool worker exited with code 3",),
        chunk_interval=0.2,
    ),
    "raises": Case("raise ValueError('boom')\n", "error", ("ValueError: boom",)),
    "exits": Case("import sys\nsys.exit(4)\n", "error", ("SystemExit: 4",)),
}


@pytest.fixture(name="pool")
def _pool(monkeypatch):
    monkeypatch.setenv("ADVERSARIAL_API_KEY", SECRET)  # before any worker is spawned
    register_test_tools()
    with WorkerPool(size=2) as pool:
        pool.wait_ready(10)
        yield pool
    assert pool.pids() == []


def run_bystander(pool: WorkerPool, out: list) -> None:
    out.append(run_tool("python", BYSTANDER, pool=pool, chunk_interval=0.1, limits=SMALL))


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_hostile_code_is_contained(pool, name):
    case = CORPUS[name]
    bystander: list = []
    thread = threading.Thread(target=run_bystander, args=(pool, bystander))
    thread.start()
    start = time.monotonic()
    result = run_tool(
        "python",
        case.code,
        pool=pool,
        timeout=case.timeout_s,
        limits=SMALL,
        chunk_interval=case.chunk_interval,
    )
    elapsed = time.monotonic() - start
    thread.join(timeout=30)
    assert result.status == case.status, (result.error, result.output[-2000:])
    assert any(s in result.error for s in case.says), result.error
    assert elapsed < case.timeout_s + 10  # the deadline, plus start-up on a loaded machine
    assert len(result.output) < (1 << 20) + 10_000  # output is capped, floods included
    assert SECRET not in result.output and not os.path.exists(OUTSIDE)
    # Another session on the same pool, running meanwhile, is unaffected.
    assert [(r.status, r.output) for r in bystander] == [("ok", "bystander 10\n")]
    assert [name for name in os.listdir(pool._dir) if name.endswith(".work")] == []


def test_after_a_storm_of_faults_the_pool_still_serves(pool):
    names = ["infinite_loop", "memory_bomb", "fork_bomb", "worker_dies_mid_stream", "raises"]
    results: dict[str, object] = {}

    def one(name: str) -> None:
        case = CORPUS[name]
        results[name] = run_tool("python", case.code, pool=pool, timeout=20, limits=SMALL)

    threads = [threading.Thread(target=one, args=(name,)) for name in names]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=45)
    assert sorted(results) == sorted(names)
    assert {results[name].status for name in names} == {"error"}
    after = run_tool("python", "print(6 * 7)\n", pool=pool, limits=SMALL)
    assert (after.status, after.output) == ("ok", "42\n")


# --- bad input --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "error"),
    [
        ("def f(:\n    pass\n", "SyntaxError: invalid syntax (<tool>, line 1)"),
        ("print((1,\n", "SyntaxError: '(' was never closed (<tool>, line 1)"),
        ("x = '''never closed\n", "SyntaxError: unterminated triple-quoted string literal"),
        ("print('\ud800')\n", "tool input cannot be sent: cannot encode feed message"),
    ],
)
def test_malformed_truncated_or_invalid_code(pool, code, error):
    result = run_tool("python", code, pool=pool, timeout=10, limits=SMALL)
    assert result.status == "error" and result.error.startswith(error), result.error


def test_malformed_json_is_a_parse_error_and_stops_decoding(pool):
    with ToolSession("json_echo", pool=pool) as session:
        session.feed_text('{"a": 1, "b": tru')
        session.feed_text("x}")
        assert session.abort_reason is not None and "ParseError" in session.abort_reason
        result = session.result(timeout_s=10)
    assert result.status == "error" and result.error == session.abort_reason


def test_truncated_json_is_an_error(pool):
    result = run_tool("json_echo", '{"a": 1, "b": [1, 2', pool=pool, timeout=10)
    assert result.status == "error" and "ParseError" in result.error, result.error


def test_a_unit_of_several_megabytes(pool):
    code = "x = '" + "a" * 5_000_000 + "'\nprint(len(x))\n"
    chunks = [code[i : i + 65536] for i in range(0, len(code), 65536)]
    result = run_tool("python", chunks, pool=pool, timeout=20, limits=SMALL)
    assert (result.status, result.output) == ("ok", "5000000\n")


def test_a_frame_that_is_not_ours_becomes_an_error_not_a_crash(tmp_path):
    context = zmq.Context()
    receiver = Channel(f"ipc://{tmp_path}/ch", bind=True, context=context)
    intruder = context.socket(zmq.DEALER)
    intruder.setsockopt(zmq.LINGER, 0)
    intruder.connect(receiver.endpoint)
    try:
        intruder.send(b"\xc1 not msgpack")
        intruder.send_multipart([b"two", b"frames"])
        intruder.send(b"\xa3\xff\xfe\xfd")  # a msgpack str that is not UTF-8
        got = [receiver.recv(timeout_s=5) for _ in range(3)]
        sender = Channel(receiver.endpoint, bind=False, context=context)
        sender.send(Envelope(session="s", payload=Finish()))
        good = receiver.recv(timeout_s=5)
        sender.close()
    finally:
        intruder.close()
        receiver.close()
        context.term()
    assert [type(e.payload) for e in got] == [Error, Error, Error]
    assert all(e.payload.message.startswith("not a conveyor message") for e in got)
    assert good is not None and good.kind is Kind.FINISH


def test_nobody_can_join_a_session_channel_once_its_worker_connected(pool):
    with ToolSession("python", pool=pool, limits=SMALL) as session:
        endpoint = session._handle.channel.endpoint
        assert not os.path.exists(endpoint.removeprefix("ipc://"))  # unlinked after ready
        session.feed_text("print('mine')\n")
        result = session.result(timeout_s=10)
    assert (result.status, result.output) == ("ok", "mine\n")


# --- the program fails: its tools end with it ---------------------------------------------


@pytest.mark.server
@pytest.mark.timeout(300)
def test_a_failed_program_ends_its_tools_even_while_its_state_is_kept(backend):
    import sglang as sgl

    from conveyor_sgl import partial_tool, tool_result
    from conveyor_sgl.runtime.workers.pool import default_pool
    from programs.code_solver import forced

    @sgl.function
    def fails_after_the_tool_started(s, regex):
        s += "Code:\n" + partial_tool("code", tool="python", stop="```", max_tokens=64, regex=regex)
        if s["code"] is not None:  # a read first: the check before the run cannot see past it
            s += tool_result("not_a_tool_of_this_program")  # fails in the executor
        s += tool_result("code")

    hangs = "import time\ntime.sleep(600)\n"
    state = fails_after_the_tool_started.run(forced(hangs, "```"))
    assert "has no partial_tool('not_a_tool_of_this_program')" in str(state.error())
    pool_dir = default_pool()._dir
    deadline = time.monotonic() + 10  # the tool sleeps 600 s: only a cancel ends it sooner
    while [n for n in os.listdir(pool_dir) if n.endswith(".work")] and time.monotonic() < deadline:
        time.sleep(0.1)
    assert [n for n in os.listdir(pool_dir) if n.endswith(".work")] == []
    assert state.text().startswith("Code:\n" + hangs)  # the state is still here
