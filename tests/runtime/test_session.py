"""ToolSession against real workers: the happy path, the timeline, and every failure path."""

from __future__ import annotations

import time

import pytest
import zmq
from worker_fixtures import fresh_pool, no_leaked_workers, pid_gone, wait_until

from conveyor_sgl.runtime.session import ToolSession
from conveyor_sgl.runtime.workers.messages import Limits, MessageError

pytestmark = pytest.mark.timeout(30)
_leaks = pytest.fixture(autouse=True, name="no_leaked_workers")(no_leaked_workers)
_pool = pytest.fixture(name="pool")(fresh_pool)

TIMELINE_KEYS = {
    "status",
    "output",
    "error",
    "mode",
    "sandbox",
    "units",
    "decode_finished_at",
    "result_ready_at",
}
UNIT_KEYS = {"text", "decoded_at", "sent_at", "started_at", "finished_at", "after"}


def run_session(pool, tool: str, text: str, timeout_s: float = 10.0, **kwargs):
    with ToolSession(tool, pool=pool, **kwargs) as session:
        session.feed_text(text)
        session.end_input()
        return session.result(timeout_s=timeout_s), session


def test_happy_path_and_timeline_shape(pool):
    t0 = time.monotonic()
    with ToolSession("echo", pool=pool) as session:
        assert [u.text for u in session.feed_text("one\ntw")] == ["one\n"]
        assert [u.text for u in session.feed_text("o\nthree")] == ["two\n"]
        session.end_input()
        result = session.result(timeout_s=10)
    assert (result.status, result.output, result.error) == ("ok", "ONE\nTWO\nTHREE", None)
    timeline = result.to_dict(t0)
    assert set(timeline) == TIMELINE_KEYS and timeline["mode"] == "client"
    assert [u["text"] for u in timeline["units"]] == ["one\n", "two\n", "three"]
    for unit in timeline["units"]:
        assert set(unit) == UNIT_KEYS
        assert 0 <= unit["decoded_at"] <= unit["sent_at"] <= unit["started_at"]
        assert unit["started_at"] <= unit["finished_at"] <= timeline["result_ready_at"]
    assert timeline["decode_finished_at"] <= timeline["result_ready_at"]
    assert result.units == result.to_dict()["units"]


def test_tokens_that_finish_no_unit_do_not_wake_the_parser(pool, monkeypatch):
    from conveyor_sgl.runtime import session as session_module

    fed: list[str] = []

    class Recording:  # the real parser, recording what reaches it
        def __init__(self, inner):
            self.inner = inner
            self.wake = inner.wake

        def feed(self, delta):
            fed.append(delta)
            return self.inner.feed(delta)

        def close(self):
            return self.inner.close()

    real = session_module.make_parser
    monkeypatch.setattr(session_module, "make_parser", lambda name: Recording(real(name)))
    with ToolSession("echo", pool=pool, t0=0.0) as session:
        for now, token in enumerate(["al", "pha", "\nbe", "t", "a\ngam", "ma"], start=1):
            session.feed_text(token, now=float(now))
        session.end_input(now=9.0)
        result = session.result(timeout_s=10)
    assert fed == ["alpha\nbe", "ta\ngam", "ma"]  # the last one at end_input
    assert result.output == "ALPHA\nBETA\nGAMMA"
    # Each unit is still stamped when the delta that finished it arrived.
    assert [u["decoded_at"] for u in result.units] == [3.0, 5.0, 9.0]


def test_given_decode_times_are_kept(pool):
    with ToolSession("echo", pool=pool, t0=100.0) as session:
        session.feed_text("a\n", now=101.0)
        session.end_input(now=102.0)
        result = session.result(timeout_s=10)
    assert result.units[0]["decoded_at"] == 1.0
    assert result.to_dict()["decode_finished_at"] == 2.0


def test_json_units_carry_their_data(pool):
    result, _ = run_session(pool, "json_echo", '{"q": "cats", "n": 3}')
    assert result.output == "q='cats'\nn=3"


def test_every_session_gets_a_fresh_light_process(pool):
    first, _ = run_session(pool, "probe", "x\n")
    second, _ = run_session(pool, "probe", "x\n")
    for result in (first, second):
        assert "sessions=1" in result.output  # a fresh process: no state from an earlier session
        assert "heavy=[]" in result.output  # the worker never imports sglang or torch


def test_a_tool_that_crashes_the_process_on_start(pool):
    result, _ = run_session(pool, "crash_on_start", "a\n")
    assert (result.status, result.error) == ("error", "tool worker exited with code 3")


@pytest.mark.parametrize(("text", "config"), [("hang\n", {}), ("a\n", {"hang_in_finish": True})])
def test_a_hanging_tool_times_out_and_its_worker_is_killed(pool, text, config):
    with ToolSession("hang", pool=pool, config=config) as session:
        session.feed_text(text)
        pid = session._handle.pid
        t = time.monotonic()
        result = session.result(timeout_s=0.5)
        waited = time.monotonic() - t
    assert result.status == "timeout"
    assert result.error == "tool 'hang' returned no result within 0.5s"
    assert 0.45 <= waited < 1.5
    assert pid_gone(pid)


def test_a_worker_that_dies_mid_session(pool):
    result, _ = run_session(pool, "die_mid_session", "a\nb\nc\n")
    assert (result.status, result.error) == ("error", "tool worker exited with code 5")
    # Unit 0's unit_done may still have been queued in the dying process: only unit 1 is sure.
    assert result.units[1]["finished_at"] is None


def test_a_dead_worker_is_noticed_while_feeding(pool):
    with ToolSession("die_mid_session", pool=pool) as session:
        session.feed_text("a\nb\n")
        assert wait_until(lambda: session._handle.exit_code() is not None, 5)
        session.feed_text("c\n")
        result = session.result(timeout_s=5)
    assert result.error == "tool worker exited with code 5"
    assert result.units[2]["sent_at"] is None  # nothing is sent to a dead worker


@pytest.mark.parametrize(
    ("text", "config", "error"),
    [
        ("a\nraise\n", {}, "ValueError: bad unit 'raise'"),
        ("a\n", {"raise_in_start": True}, "RuntimeError: start failed on purpose"),
    ],
)
def test_a_tool_that_raises(pool, text, config, error):
    result, _ = run_session(pool, "raising", text, config=config)
    assert (result.status, result.error) == ("error", error)


def test_a_tool_that_asks_to_abort(pool):
    with ToolSession("aborting", pool=pool) as session:
        session.feed_text("a\nstop: bad\n")
        assert wait_until(lambda: session.abort_reason is not None, 5)
        assert session.abort_reason == "invalid argument: stop: bad"
        assert session.feed_text("b\n") == []  # decoding should stop; nothing more is sent
        session.end_input()
        result = session.result(timeout_s=10)
    assert (result.status, result.output) == ("aborted", "executed 1 lines")
    assert result.error == "invalid argument: stop: bad"


def test_a_parse_error_ends_the_session(pool):
    with ToolSession("json_echo", pool=pool) as session:
        session.feed_text('{"a": 1, ')
        pid = session._handle.pid
        session.feed_text("}x")
        assert session.abort_reason.startswith("ParseError: invalid JSON")
        result = session.result(timeout_s=1)
    assert result.status == "error" and result.error.startswith("ParseError: invalid JSON")
    assert pid_gone(pid)


def test_a_truncated_input_is_a_parse_error_at_the_end(pool):
    result, _ = run_session(pool, "json_echo", '{"a": 1, ')
    assert result.status == "error" and "truncated JSON" in result.error


def test_cancel_and_context_exit_end_the_worker(pool):
    with ToolSession("echo", pool=pool) as session:
        session.feed_text("a\n")
        pid = session._handle.pid
        session.cancel()
        session.cancel()
        assert session.result().status == "aborted"
    assert pid_gone(pid)
    with ToolSession("echo", pool=pool) as session:
        pid = session._handle.pid
    assert pid_gone(pid)


def test_a_bad_output_from_finish(pool):
    result, _ = run_session(pool, "bad_output", "a\n")
    assert result.error == "TypeError: finish() returned str, not ToolOutput"


def test_memory_limit(pool):
    limits = Limits(memory_bytes=512 << 20)
    result, _ = run_session(pool, "memory_hog", "1\n1024\n", limits=limits)
    assert (result.status, result.error) == ("error", "MemoryError")


@pytest.mark.timeout(15)
def test_cpu_limit(pool):
    result, _ = run_session(pool, "cpu_burn", "x\n", limits=Limits(cpu_s=1))
    # The sandbox turns SIGXCPU into an exception in the tool, so the worker still reports.
    assert (result.status, result.error) == (
        "error",
        "CpuLimitExceeded: CPU time limit of 1 s exceeded",
    )


def test_unknown_tool_and_unencodable_config_fail_before_a_worker_is_taken(pool):
    with pytest.raises(ValueError, match=r"unknown tool 'nope'; known tools: .*echo"):
        ToolSession("nope", pool=pool)
    with pytest.raises(MessageError):
        ToolSession("echo", pool=pool, config={"x": object()})


def test_garbage_on_the_session_channel_is_ignored(pool):
    with ToolSession("echo", pool=pool, config={"delay_s": 0.2}) as session:
        session.feed_text("a\n")
        session.end_input()  # everything is sent: an intruder peer cannot steal frames now
        intruder = zmq.Context.instance().socket(zmq.DEALER)
        intruder.setsockopt(zmq.LINGER, 0)
        intruder.connect(session._handle.channel.endpoint)
        intruder.send(b"garbage")
        result = session.result(timeout_s=10)
        intruder.close()
    assert (result.status, result.output) == ("ok", "A")
