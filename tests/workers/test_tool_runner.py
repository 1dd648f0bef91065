"""The worker's session logic in one process, without sockets or subprocesses."""

from __future__ import annotations

import pytest

from conveyor_sgl.runtime.workers.messages import (
    AbortDecoding,
    Cancel,
    Confined,
    Envelope,
    Error,
    Feed,
    Finish,
    Limits,
    Result,
    Shutdown,
    Start,
    UnitDone,
)
from conveyor_sgl.runtime.workers.tool_runner import RunnerState, ToolRunner

pytestmark = pytest.mark.timeout(10)


def start(target: str, **config) -> Envelope:
    return Envelope(session="s", payload=Start(target=f"tools_for_tests:{target}", config=config))


def feed(index: int, text: str) -> Envelope:
    return Envelope(session="s", payload=Feed(index=index, text=text, start=0, end=len(text)))


FINISH = Envelope(session="s", payload=Finish())


def run(runner: ToolRunner, *envelopes: Envelope) -> list:
    return [out for envelope in envelopes for out in runner.handle(envelope)]


def test_a_session_start_feed_finish():
    runner = ToolRunner()
    out = run(runner, start("EchoTool"), feed(0, "a\n"), feed(1, "b\n"), FINISH)
    assert [type(o) for o in out] == [UnitDone, UnitDone, Result]
    assert [o.index for o in out[:2]] == [0, 1]
    assert all(o.started_at <= o.finished_at for o in out[:2])
    assert out[2] == Result(status="ok", output="A\nB")
    assert runner.done


def test_reported_work_overrides_the_feed_spans_by_session_index():
    runner = ToolRunner()
    # Session indices 4 and 9: the tool counts units in feed order (0, 1).
    out = run(runner, start("ReportingTool"), feed(4, "a\n"), feed(9, "b\n"), FINISH)
    assert [type(o) for o in out] == [UnitDone, UnitDone, UnitDone, UnitDone, Result]
    assert out[2] == UnitDone(index=4, started_at=100.0, finished_at=101.0, after=[])
    assert out[3] == UnitDone(index=9, started_at=101.0, finished_at=103.0, after=[4])
    assert out[4] == Result(status="ok", output="done")


def test_the_sandbox_hook_gets_the_limits_before_tool_code():
    seen = []

    def sandbox(start, tool_class):
        seen.append((start.limits, tool_class.__name__, runner._tool))
        return ["landlock"]

    runner = ToolRunner(sandbox=sandbox)
    envelope = Envelope(
        session="s", payload=Start(target="tools_for_tests:EchoTool", limits=Limits(cpu_s=2))
    )
    out = run(runner, envelope)
    assert seen == [(Limits(cpu_s=2), "EchoTool", None)]  # no tool instance yet
    assert out == [Confined(layers=["landlock"])]  # said before any tool code ran


@pytest.mark.parametrize(
    ("envelopes", "error"),
    [
        ([start("RaisingTool", raise_in_start=True)], "RuntimeError: start failed on purpose"),
        ([start("RaisingTool"), feed(0, "raise\n")], "ValueError: bad unit 'raise'"),
        ([start("BadOutputTool"), FINISH], "TypeError: finish() returned str, not ToolOutput"),
        ([start("NotATool")], "is not a subclass of conveyor_sgl Tool"),
        ([start("Missing")], "has no Missing"),
    ],
)
def test_tool_errors_become_data(envelopes, error):
    runner = ToolRunner()
    out = run(runner, *envelopes)
    assert isinstance(out[-1], Result) and out[-1].status == "error"
    assert error in out[-1].error
    assert runner.done


def test_abort_skips_later_units_and_marks_the_result():
    runner = ToolRunner()
    out = run(runner, start("AbortingTool"), feed(0, "a\n"), feed(1, "stop here\n"))
    assert out[-1] == AbortDecoding(reason="invalid argument: stop here")
    assert runner.state is RunnerState.ABORTED
    assert run(runner, feed(2, "c\n")) == []
    (result,) = run(runner, FINISH)
    assert result == Result(status="aborted", output="executed 1 lines", error=out[-1].reason)


def test_a_tool_without_partial_input_gets_every_unit_at_finish():
    runner = ToolRunner()
    assert run(runner, start("BatchEchoTool"), feed(0, "a\n"), feed(1, "b\n")) == []
    out = run(runner, FINISH)
    assert [type(o) for o in out] == [UnitDone, UnitDone, Result]
    assert out[-1].output.endswith(" A B")


def test_cancel_and_shutdown_end_the_session():
    runner = ToolRunner()
    out = run(runner, start("EchoTool"), Envelope(session="s", payload=Cancel(reason="why")))
    assert out == [Result(status="aborted", error="cancelled: why")]
    runner = ToolRunner()
    assert run(runner, Envelope(session="", payload=Shutdown())) == []
    assert runner.done


def test_protocol_errors_and_garbage():
    runner = ToolRunner()
    assert run(runner, Envelope(session="", payload=Error(message="garbage"))) == []
    assert not runner.done  # garbage is ignored
    (error,) = run(runner, feed(0, "a\n"))
    assert isinstance(error, Error) and "feed before start" in error.message
    assert runner.done and runner.session == "s"


def test_other_sessions_are_ignored():
    runner = ToolRunner()
    run(runner, start("EchoTool"))
    stray = Envelope(session="other", payload=Feed(index=0, text="x\n", start=0, end=2))
    assert run(runner, stray) == []
    assert run(runner, FINISH) == [Result(status="ok", output="")]
