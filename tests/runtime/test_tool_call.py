"""CallDriver against real workers: a generation's text fed with its stop strings held back,
a stop asked by the tool or from outside, and the result by a deadline."""

from __future__ import annotations

import time

import pytest
from worker_fixtures import fresh_pool, no_leaked_workers, wait_until

from conveyor_sgl.runtime.session import ToolSession
from conveyor_sgl.runtime.tool_call import CallDriver

pytestmark = pytest.mark.timeout(30)
_leaks = pytest.fixture(autouse=True, name="no_leaked_workers")(no_leaked_workers)
_pool = pytest.fixture(name="pool")(fresh_pool)

STOP = "<END_OF_CODE>"
MATCHED = {"finish_reason": {"type": "stop", "matched": STOP}}


def generation(call: CallDriver, texts: list[str], last_meta: dict) -> list[str]:
    """Feed a generation's growing text as a stream does; the text shown per event."""
    shown = []
    for i, text in enumerate(texts):
        finished = i == len(texts) - 1
        shown.append(call.take(text, last_meta if finished else {}, finished, None))
    return shown


def test_a_stop_string_is_held_back_and_never_fed(pool):
    texts = ["one\n<END", "one\ntwo<END", "one\ntwo\n<END_OF", "one\ntwo\n" + STOP]
    with ToolSession("echo", pool=pool) as session:
        call = CallDriver(session, STOP)
        shown = generation(call, texts, MATCHED)
        assert shown == ["one\n", "two", "\n", ""]  # "<END" was text only once it was not a stop
        assert call.end() is None and not call.stopped
        result = call.result(time.monotonic() + 10)
    assert (result.status, result.output) == ("ok", "ONE\nTWO")


def test_the_tool_stops_decoding_and_the_held_tail_is_shown_not_fed(pool):
    with ToolSession("aborting", pool=pool) as session:
        call = CallDriver(session, STOP)
        assert call.take("a\nstop\n", {}, False, None) == "a\nstop\n"
        assert wait_until(lambda: call.feed(""), 5)  # the tool's Abort came back
        assert call.stopped and "invalid argument: stop" in (call.abort_reason or "")
        # Decoding stops here, not at a stop string: the held "<END" is plain text.
        assert call.take("a\nstop\nb\n<END", {}, False, None) == "b\n<END"
        assert call.end() == call.abort_reason
        result = call.result(time.monotonic() + 10)
    assert [u["text"] for u in result.units] == ["a\n", "stop\n"]


def test_a_cut_feeds_nothing_more(pool):
    with ToolSession("echo", pool=pool) as session:
        call = CallDriver(session, STOP)
        assert call.take("one\n<E", {}, False, None) == "one\n"
        call.cut()  # the server's cap, from its event loop: flags only
        assert call.stopped
        assert call.take("one\n<EN two\n", {}, False, None) == "<EN two\n"
        call.cancel("capped")
        result = call.result(time.monotonic() + 10)
    assert [u["text"] for u in result.units] == ["one\n"]
    assert result.status == "aborted"


@pytest.mark.timing
def test_wait_gives_nothing_up_and_result_by_a_deadline(pool):
    with ToolSession("hang", pool=pool, config={"hang_in_finish": True}) as session:
        call = CallDriver(session)
        call.feed("x\n")
        call.end()
        started = time.monotonic()
        assert call.wait(started + 0.2) is None
        assert session.timeline.status is None  # still running: a later wait may have it
        result = call.result(time.monotonic() + 0.3)
        assert time.monotonic() - started < 2.0
    assert result.status == "timeout" and "within" in (result.error or "")


def test_a_result_already_in_is_not_a_timeout_at_a_past_deadline(pool):
    with ToolSession("echo", pool=pool) as session:
        call = CallDriver(session)
        call.feed("a\n")
        call.end()
        assert wait_until(lambda: call.wait(time.monotonic() + 0.05) is not None, 10)
        assert call.result(0.0).status == "ok"
