"""Function calls (runtime/function_call.py): a Python callable called the moment its JSON
arguments close, checked against its schema, run at once with the others, every outcome a
result (failure, hang, non-text)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import threading
import time
from typing import Any

import pytest

from conveyor_sgl.runtime.function_call import (
    CallableTool,
    FunctionCallError,
    FunctionSession,
    as_function_tool,
    signature_schema,
    to_text,
)

pytestmark = pytest.mark.timeout(60)


def call(fn, arguments: str, *, pieces: int = 1, **kwargs):
    tool = fn if isinstance(fn, CallableTool) else as_function_tool(fn)
    session = FunctionSession(tool, **kwargs)
    step = max(1, len(arguments) // pieces)
    for i in range(0, len(arguments), step):
        session.feed_text(arguments[i : i + step])
    return session


@dataclasses.dataclass
class Point:
    x: int
    y: int


class Opaque:
    def __str__(self) -> str:
        return "<opaque thing>"


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("plain text", "plain text"),
        ({"city": "Oslo", "temp": 3.5}, '{"city": "Oslo", "temp": 3.5}'),
        ([1, "two", None], '[1, "two", null]'),
        ((1, 2), "[1, 2]"),
        (None, "null"),
        (True, "true"),
        (42, "42"),
        (b"caf\xc3\xa9", "café"),
        (Point(1, 2), '{"x": 1, "y": 2}'),
        (Opaque(), "<opaque thing>"),
        ({"when": Opaque()}, '{"when": "<opaque thing>"}'),
    ],
)
def test_a_return_value_becomes_the_text_the_model_reads(value, text):
    assert to_text(value) == text
    result = call(lambda: value, "{}").result(5)
    assert (result.status, result.output, result.error) == ("ok", text, None)


def test_a_callable_that_raises_is_an_error_result():
    def book_hotel(city: str) -> str:
        raise LookupError(f"no rooms in {city}")

    result = call(book_hotel, '{"city": "Oslo"}').result(5)
    assert result.status == "error" and result.output == ""
    assert result.error == "function 'book_hotel' raised LookupError: no rooms in Oslo"


def test_an_async_callable_that_raises_is_an_error_result():
    async def search(q: str) -> str:
        await asyncio.sleep(0)
        raise TimeoutError("the upstream API timed out")  # its own, not our deadline

    result = call(search, '{"q": "x"}').result(5)
    assert result.status == "error"
    assert result.error == "function 'search' raised TimeoutError: the upstream API timed out"


def test_a_sync_callable_that_hangs_is_a_timeout_at_its_deadline():
    release = threading.Event()

    def stuck(x: int) -> int:
        release.wait(30)
        return x

    tool = CallableTool(stuck, timeout_s=0.3)
    start = time.monotonic()
    result = call(tool, '{"x": 1}').result(10)
    took = time.monotonic() - start
    release.set()
    assert result.status == "timeout", result.error
    assert "within its deadline of 0.3s" in result.error
    assert 0.25 < took < 2.0


def hanging() -> tuple[Any, threading.Event]:
    """An async callable that sleeps 30 s, and the event it sets when it is cancelled."""
    cancelled = threading.Event()

    async def stuck() -> str:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return "never"

    return stuck, cancelled


def test_an_async_callable_that_hangs_is_cancelled_at_its_deadline():
    stuck, cancelled = hanging()
    result = call(CallableTool(stuck, timeout_s=0.2), "{}").result(10)
    assert result.status == "timeout"
    assert cancelled.wait(5)


def test_a_result_wait_shorter_than_the_call_is_a_timeout_and_gives_the_call_up():
    slow, cancelled = hanging()
    session = call(slow, "{}")
    assert session.wait(0.1) is None  # not given up yet
    result = session.result(0.2)
    assert result.status == "timeout" and "returned no result within 0.2s" in result.error
    assert cancelled.wait(5)


def test_the_call_starts_in_the_delta_that_closes_its_arguments():
    started = threading.Event()

    def lookup(city: str, days: int = 1) -> str:
        started.set()
        return f"{city} x{days}"

    session = FunctionSession(as_function_tool(lookup))
    for piece in ['{"city": "Os', 'lo", "da', "ys", '": 3']:
        session.feed_text(piece)
        assert not started.is_set() and session.timeline.units == []
    session.feed_text("}")  # the close: the call is on its way before the input ends
    assert started.wait(5)
    (unit,) = session.timeline.units
    assert unit.text == '{"city": "Oslo", "days": 3}' and unit.sent_at >= unit.decoded_at
    session.feed_text("\n")  # whitespace after the object changes nothing
    session.end_input()
    result = session.result(5)
    assert result.output == "Oslo x3"
    (timed,) = result.units
    assert timed["decoded_at"] <= timed["sent_at"] <= timed["started_at"] <= timed["finished_at"]
    assert timed["after"] == []  # it waited for no other call


def test_the_sequential_baseline_starts_when_the_input_ends():
    ran = threading.Event()
    session = call(lambda: ran.set() or "done", "{}", partial=False)
    time.sleep(0.1)
    assert not ran.is_set()
    session.end_input()
    assert session.result(5).output == "done" and ran.is_set()


def test_calls_run_at_once():
    def slow_sync(n: int) -> int:
        time.sleep(0.4)
        return n

    async def slow_async(n: int) -> int:
        await asyncio.sleep(0.4)
        return n

    start = time.monotonic()
    sessions = [
        call(fn, json.dumps({"n": i})) for i, fn in enumerate([slow_sync] * 3 + [slow_async] * 3)
    ]
    results = [s.result(10) for s in sessions]
    took = time.monotonic() - start
    assert [r.output for r in results] == [str(i) for i in range(6)]
    assert took < 1.2, f"6 calls of 0.4 s took {took:.2f} s"
    spans = [(r.timeline.units[0].started_at, r.timeline.units[0].finished_at) for r in results]
    assert max(s for s, _ in spans) < min(f for _, f in spans)  # every pair overlapped


def weather(city: str, unit: str = "c", days: int = 1) -> str:
    """The weather."""
    return f"{city}: {days} days in {unit}"


@pytest.mark.parametrize(
    ("arguments", "error"),
    [
        ('{"city": 5}', "invalid argument 'city': 5 is not of type 'string'"),
        ('{"unit": "c"}', "invalid arguments: 'city' is a required property"),
        ('{"city": "Oslo", "hours": 2}', "unexpected argument 'hours' (allowed: city, days, unit)"),
        ('{"city": "Oslo", "days": "3"}', "invalid argument 'days': '3' is not of type 'integer'"),
    ],
)
def test_arguments_are_checked_against_the_signature_before_the_call(arguments, error):
    ran = threading.Event()

    def checked(city: str, unit: str = "c", days: int = 1) -> str:
        ran.set()
        return "ran"

    result = call(checked, arguments).result(5)
    assert result.status == "error" and error in result.error, result.error
    assert result.error.startswith("tool call 'checked': ")
    assert not ran.is_set() and result.units[0]["started_at"] is None


def test_an_explicit_schema_replaces_the_signature():
    schema = {"type": "object", "properties": {"unit": {"enum": ["c", "f"]}}}
    tool = CallableTool(weather, schema=schema)
    result = call(tool, '{"city": "Oslo", "unit": "kelvin"}').result(5)
    assert result.error.endswith("invalid argument 'unit': 'kelvin' is not one of ['c', 'f']")
    with pytest.raises(FunctionCallError, match="not a valid JSON Schema"):
        CallableTool(weather, schema={"type": "no-such-type"})


def test_the_signature_gives_a_json_schema():
    schema = signature_schema(weather)
    assert schema["required"] == ["city"] and schema["additionalProperties"] is False
    assert schema["properties"]["days"]["type"] == "integer"
    assert as_function_tool(weather).declaration() == {
        "type": "function",
        "function": {"name": "weather", "description": "The weather.", "parameters": schema},
    }


@pytest.mark.parametrize(
    ("pieces", "error"),
    [
        (['{"city": "Oslo"'], "the arguments were cut off: truncated JSON object"),
        (['{"city": Oslo}'], "invalid JSON arguments: invalid JSON at offset 9"),
        (["[1, 2]"], "invalid JSON arguments"),
        (["{} {}"], "trailing data"),
    ],
)
def test_malformed_arguments_are_an_error_result(pieces, error):
    session = FunctionSession(as_function_tool(weather))
    for piece in pieces:
        session.feed_text(piece)
    session.end_input()
    result = session.result(5)
    assert result.status == "error" and error in result.error, result.error
    assert session.abort_reason is None  # the message goes on


def test_a_cancelled_call_is_aborted():
    session = call(lambda: time.sleep(5), "{}")
    session.cancel("the client went away")
    result = session.result(1)
    assert result.status == "aborted" and result.error == "cancelled: the client went away"


SUBPROCESS_UNDER_UVLOOPS_POLICY = """
import asyncio
import uvloop
from conveyor_sgl.runtime.function_call import FunctionRunner
runner = FunctionRunner()
runner.loop()  # started under asyncio's own policy, as in a program
# What importing SGLang's engine, http_server or tokenizer_manager module does:
asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
async def child():
    proc = await asyncio.create_subprocess_exec("true")
    return await proc.wait()
print(runner.submit_coroutine(child).result(timeout=60))
"""


def test_the_loop_starts_subprocesses_once_sglang_set_uvloops_policy():
    # An MCP stdio server is such a subprocess; SGLang's server modules swap the loop policy
    # process-wide when imported (e.g. by sgl.Runtime in the same program).
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-c", SUBPROCESS_UNDER_UVLOOPS_POLICY],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0 and done.stdout.strip() == "0", done.stderr[-2000:]
