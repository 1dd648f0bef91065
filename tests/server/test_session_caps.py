"""What one client may hold in server mode: sessions per client (fair_share.py) and a
session's wall time (ServerToolRun's cap), against real tool workers and a stand-in for
SGLang's TokenizerManager; the route's order of refusals (ServerMode)."""

from __future__ import annotations

import asyncio
import gc
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace
from typing import Any

import pytest
from worker_fixtures import fresh_pool, no_leaked_workers, pid_gone, wait_until

from conveyor_sgl.errors import ConveyorError
from conveyor_sgl.runtime.server.admission import PolicyError
from conveyor_sgl.runtime.server.fair_share import (
    ClientSessions,
    TooManySessions,
    client_of,
    client_of_request,
)
from conveyor_sgl.runtime.server.policy import ServerPolicy
from conveyor_sgl.runtime.server.protocol import DECODE_END, EVENT_KEY, RESULT, SSE_DONE, TEXT_KEY
from conveyor_sgl.runtime.server.routes import ServerMode
from conveyor_sgl.runtime.server.tool_run import CLIENT_GONE, ServerToolRun
from conveyor_sgl.runtime.session import ToolSession
from conveyor_sgl.runtime.workers.pool import WorkerPool

pytestmark = pytest.mark.timeout(60)
_leaks = pytest.fixture(autouse=True, name="no_leaked_workers")(no_leaked_workers)
_pool = pytest.fixture(name="pool")(fresh_pool)

CAP_WORDS = "cap on a session's wall time"


# --- who a client is ----------------------------------------------------------------------


def test_a_client_is_its_api_key_else_its_address():
    one = client_of({"authorization": "Bearer k1"}, "10.0.0.1")
    assert one == client_of({"authorization": "bearer  k1 "}, "10.0.0.2")  # the key, not where
    assert one != client_of({"authorization": "Bearer k2"}, "10.0.0.1")
    assert one.startswith("key:") and "k1" not in one  # kept as a digest
    assert client_of({}, "10.0.0.1") == "addr:10.0.0.1"
    assert client_of({"authorization": "Bearer "}, "10.0.0.1") == "addr:10.0.0.1"
    assert client_of({"authorization": "Basic abc"}, "10.0.0.1") == "addr:10.0.0.1"
    assert client_of(None, None) == "addr:unknown"
    request = SimpleNamespace(headers={"authorization": "Bearer k1"}, client=None)
    assert client_of_request(request) == one
    assert client_of_request(object()) == "addr:unknown"


def test_sessions_per_client_are_capped_and_given_back_once():
    clients = ClientSessions(2)
    a1, a2 = clients.take("a"), clients.take("a")
    with pytest.raises(TooManySessions) as refused:
        clients.take("a")
    error = refused.value
    assert isinstance(error, PolicyError) and isinstance(error, ConveyorError)
    assert (error.status, error.rule) == (429, "client_sessions")
    assert "already holds 2 tool sessions" in str(error)
    assert "(--tool-max-sessions-per-client)" in str(error)
    clients.take("b").release()  # another client is not held up
    a1.release()
    a1.release()  # once only: a second release gives nothing back
    assert clients.held("a") == 1 and a1.released
    a3 = clients.take("a")
    with pytest.raises(TooManySessions):
        clients.take("a")
    a2.release()
    a3.release()
    assert clients.held("a") == 0 and clients._held == {}  # nobody remembered for nothing
    with pytest.raises(ValueError):
        ClientSessions(0)


def test_the_count_holds_under_threads():
    clients = ClientSessions(3)
    taken: list[Any] = []
    refused = 0
    lock = threading.Lock()

    def grab() -> None:
        nonlocal refused
        for _ in range(200):
            try:
                slot = clients.take("a")
            except TooManySessions:
                with lock:
                    refused += 1
                continue
            with lock:
                taken.append(slot)
                assert clients.held("a") <= 3
            slot.release()

    threads = [threading.Thread(target=grab) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert clients.held("a") == 0 and len(taken) + refused == 1600


# --- a session's wall time ----------------------------------------------------------------


class FakeTokenizerManager:
    """Streams ``lines`` one output per ``interval_s`` (the whole text so far, as SGLang's
    stream does), then keeps going if ``forever``, until it is aborted."""

    def __init__(self, lines: list[str], interval_s: float = 0.02, forever: bool = False):
        self.lines, self.interval_s, self.forever = lines, interval_s, forever
        self.aborted: list[str] = []

    async def generate_request(self, obj: Any, request: Any):
        obj.rid = obj.rid or "rid-1"
        text, i = "", 0
        while True:
            await asyncio.sleep(self.interval_s)
            if obj.rid in self.aborted:
                yield {"text": text, "meta_info": {"finish_reason": {"type": "abort"}}}
                return
            if i < len(self.lines):
                text += self.lines[i]
            elif not self.forever:
                yield {"text": text, "meta_info": {"finish_reason": {"type": "stop"}}}
                return
            i += 1
            yield {"text": text, "meta_info": {"finish_reason": None}}

    def abort_request(self, rid: str) -> None:
        self.aborted.append(rid)


class Ends:
    def __init__(self) -> None:
        self.count = 0

    def __call__(self) -> None:
        self.count += 1


def _run(
    pool: WorkerPool,
    tm: FakeTokenizerManager,
    tool: str,
    config: dict | None = None,
    max_session_s: float | None = 1.0,
    result_timeout: float = 30.0,
    stop: str | None = None,
) -> tuple[ServerToolRun, Ends, ThreadPoolExecutor]:
    t0 = time.monotonic()
    session = ToolSession(tool, pool=pool, config=config or {}, mode="server", t0=t0)
    ends = Ends()
    executor = ThreadPoolExecutor(4)
    run = ServerToolRun(
        tm,
        SimpleNamespace(rid=None, sampling_params={"stop": stop} if stop else {}),
        session,
        t0=t0,
        result_timeout=result_timeout,
        executor=executor,
        dumps=lambda obj: json.dumps(obj).encode(),
        lock=threading.Lock(),
        max_session_s=max_session_s,
        on_end=ends,
    )
    return run, ends, executor


def _objects(frames: list[bytes]) -> list[Any]:
    out = []
    for frame in frames:
        assert frame.startswith(b"data: ")
        body = frame[len(b"data: ") :].strip()
        out.append(body if body == b"[DONE]" else json.loads(body))
    return out


async def _read_all(run: ServerToolRun) -> list[Any]:
    return _objects([frame async for frame in run.events(None)])


def _decode_end_and_result(objects: list[Any]) -> tuple[dict, dict]:
    ours = [o for o in objects if isinstance(o, dict) and EVENT_KEY in o]
    assert [o[EVENT_KEY] for o in ours] == [DECODE_END, RESULT]
    assert objects[-1] == SSE_DONE.strip()[len(b"data: ") :]
    return ours[0], ours[1]["tool"]


@pytest.mark.timing
def test_the_cap_ends_a_session_while_it_is_decoding(pool):
    tm = FakeTokenizerManager(["a\n", "b\n"], forever=True)
    run, ends, executor = _run(pool, tm, "echo")
    pid = run.session._handle.pid
    started = time.monotonic()
    objects = asyncio.run(_read_all(run))
    assert time.monotonic() - started < 3.0  # the cap (1 s), not the endless generation
    decode_end, tool = _decode_end_and_result(objects)
    assert tm.aborted == ["rid-1"]  # the scheduler stopped generating
    assert CAP_WORDS in decode_end["abort_reason"]
    assert "(--tool-max-session-s)" in decode_end["abort_reason"]
    assert tool["status"] == "aborted" and CAP_WORDS in tool["error"]
    assert [u["text"] for u in tool["units"]] == ["a\n", "b\n"]  # what came before the cap
    assert wait_until(lambda: pid_gone(pid), 5)  # its worker is gone
    assert wait_until(lambda: ends.count == 1, 2)
    executor.shutdown()


@pytest.mark.timing
def test_the_cap_ends_a_session_whose_tool_never_answers(pool):
    tm = FakeTokenizerManager(["x\n"])
    run, ends, executor = _run(pool, tm, "hang", {"hang_in_finish": True})
    pid = run.session._handle.pid
    started = time.monotonic()
    decode_end, tool = _decode_end_and_result(asyncio.run(_read_all(run)))
    assert 0.9 < time.monotonic() - started < 3.0
    assert decode_end["abort_reason"] is None and tm.aborted == []  # decoding had ended
    assert tool["status"] == "aborted" and CAP_WORDS in tool["error"]
    assert wait_until(lambda: pid_gone(pid), 5)
    assert wait_until(lambda: ends.count == 1, 2)
    executor.shutdown()


def test_a_session_within_the_cap_ends_once_and_normally(pool):
    tm = FakeTokenizerManager(["one\n", "two\n"])
    run, ends, executor = _run(pool, tm, "echo", max_session_s=30)
    decode_end, tool = _decode_end_and_result(asyncio.run(_read_all(run)))
    assert (tool["status"], tool["output"], decode_end["abort_reason"]) == ("ok", "ONE\nTWO", None)
    assert tm.aborted == [] and ends.count == 1
    executor.shutdown()


def test_the_server_holds_back_stop_strings_and_sends_the_text_to_show(pool):
    tm = FakeTokenizerManager(["one\n", "two<EN", "D>", "\nthree\n"])
    run, _, executor = _run(pool, tm, "echo", max_session_s=30, stop="<END>")
    objects = asyncio.run(_read_all(run))
    _, tool = _decode_end_and_result(objects)
    generation = [o for o in objects if isinstance(o, dict) and EVENT_KEY not in o]
    assert [o[TEXT_KEY] for o in generation] == ["one\n", "two", "", "", ""]
    assert generation[-1]["text"] == "one\ntwo<END>\nthree\n"  # the ids' text, untrimmed
    assert [u["text"] for u in tool["units"]] == ["one\n", "two"]  # no stop string parsed
    executor.shutdown()


def test_a_cap_while_a_tail_is_held_shows_it_as_text(pool):
    tm = FakeTokenizerManager(["one\n<EN"], forever=True)
    run, _, executor = _run(pool, tm, "echo", max_session_s=0.5, stop="<END>")
    objects = asyncio.run(_read_all(run))
    decode_end, tool = _decode_end_and_result(objects)
    shown = "".join(o[TEXT_KEY] for o in objects if isinstance(o, dict) and TEXT_KEY in o)
    assert shown == "one\n<EN" and CAP_WORDS in decode_end["abort_reason"]
    assert [u["text"] for u in tool["units"]] == ["one\n"]
    executor.shutdown()


def test_the_cap_frees_the_worker_of_a_client_that_reads_nothing(pool):
    tm = FakeTokenizerManager(["a\n"], forever=True)
    run, ends, executor = _run(pool, tm, "echo", max_session_s=0.5)
    pid = run.session._handle.pid

    async def stalled() -> None:
        stream = run.events(None)
        await stream.__anext__()  # the first frame; then the client reads no more
        await asyncio.sleep(1.5)
        assert run.session.timeline.status == "aborted"
        assert CAP_WORDS in (run.session.timeline.error or "")
        assert ends.count == 1 and tm.aborted == ["rid-1"]
        await stream.aclose()  # the connection goes at last: nothing is ended twice

    asyncio.run(stalled())
    assert wait_until(lambda: pid_gone(pid), 5)
    assert ends.count == 1
    executor.shutdown()


def test_a_client_gone_ends_the_session_and_gives_its_place_back(pool):
    tm = FakeTokenizerManager(["a\n"], forever=True)
    run, ends, executor = _run(pool, tm, "echo", max_session_s=30)

    async def gone() -> None:
        stream = run.events(None)
        await stream.__anext__()
        await stream.aclose()  # as Starlette does when the connection drops

    asyncio.run(gone())
    assert wait_until(lambda: ends.count == 1, 5)
    assert run.session.timeline.error == f"cancelled: {CLIENT_GONE}"
    assert tm.aborted == ["rid-1"]
    executor.shutdown()


def test_a_stream_that_never_starts_gives_its_place_back(pool):
    tm = FakeTokenizerManager(["a\n"])
    run, ends, executor = _run(pool, tm, "echo")
    session = run.session
    del run
    gc.collect()
    assert ends.count == 1
    session.cancel()
    executor.shutdown()


# --- the route's order --------------------------------------------------------------------


class _Request:
    def __init__(self, body: dict, key: str | None = None, peer: str = "10.1.1.1") -> None:
        self._body = body
        self.headers = {"authorization": f"Bearer {key}"} if key else {}
        self.client = SimpleNamespace(host=peer)

    async def body(self) -> bytes:
        return json.dumps(self._body).encode()


def _answer(mode: ServerMode, request: _Request) -> tuple[int, str]:
    response = asyncio.run(mode.partial_tool(request))
    return response.status_code, json.loads(response.body)["error"]["message"]


def test_the_route_refuses_over_the_caps_before_anything_starts():
    pool = WorkerPool(size=0, max_workers=1)
    policy = ServerPolicy(tools=("calculator",), max_session_s=200, max_sessions_per_client=1)
    mode = ServerMode(pool=pool, policy=policy, acquire_timeout_s=0.3)
    body = {"tool": "calculator", "generate": {"text": "x"}}
    try:
        status, message = _answer(mode, _Request({**body, "result_timeout": 201}))
        assert status == 403 and "result_timeout 201s is above" in message
        assert "200s (--tool-max-session-s)" in message
        held = mode.clients.take(client_of({}, "10.1.1.1"))
        status, message = _answer(mode, _Request(body))
        assert status == 429 and "(--tool-max-sessions-per-client)" in message
        # Another client (a key) is refused by the policy, not by the count; its place is
        # given back with the refusal.
        status, message = _answer(mode, _Request({**body, "tool": "python"}, key="k"))
        assert status == 403 and "(--tool-allow)" in message
        assert mode.clients.held(client_of({"authorization": "Bearer k"}, None)) == 0
        held.release()
        assert pool.pids() == []  # nothing was started for the refused ones
        # A session that cannot start (the pool stays busy) gives its place back too.
        worker = pool.acquire(10)
        try:
            status, message = _answer(mode, _Request(body))
        finally:
            worker.close()
        assert status == 503 and "stayed busy" in message
        assert mode.clients.held("addr:10.1.1.1") == 0
    finally:
        mode.shutdown()
