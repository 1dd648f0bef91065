"""The OpenAI helper's abort whatever the position of the invalid field.

A field is checked in the tool worker after its value closed: the first field's verdict
arrives while the model still writes the rest, the last one's after the call has ended (a
later call may have begun, or the stream ended). Either way ``calls.aborted`` says why,
the stream is closed, and no later call runs. Real tool workers; the chunks are built here.
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from chat_chunks import chunk

from conveyor_sgl import run_tool
from conveyor_sgl.primitives.openai_tools import PartialToolCalls, ToolSpec, run_tool_calls

pytestmark = pytest.mark.timeout(300)

WEATHER = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "unit": {"enum": ["celsius", "fahrenheit"]}},
    "required": ["city", "unit"],
}
BOOKING = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "nights": {"type": "integer", "minimum": 1},
        "room": {"enum": ["single", "double"]},
    },
}
SEARCH = {
    "type": "object",
    "properties": {
        "query": {"type": "string", "minLength": 1},
        "tags": {"type": "array", "items": {"type": "string"}},
        "limit": {"type": "integer", "maximum": 50},
        "filters": {"type": "object", "properties": {"year": {"type": "integer"}}},
    },
    "additionalProperties": False,
}
# (schema, valid arguments, the invalid field, its invalid value, the reason given)
CASES = {
    "weather": (
        WEATHER,
        {"city": "Oslo", "unit": "celsius"},
        "unit",
        "kelvin",
        "invalid argument 'unit': 'kelvin' is not one of ['celsius', 'fahrenheit']",
    ),
    "booking": (
        BOOKING,
        {"name": "Ada", "nights": 2, "room": "double"},
        "nights",
        0,
        "invalid argument 'nights': 0 is less than the minimum of 1",
    ),
    "search": (
        SEARCH,
        {"query": "fjords", "tags": ["a", "b"], "limit": 5, "filters": {"year": 2020}},
        "tags",
        ["a", 3],
        "invalid argument 'tags': 3 is not of type 'string'",
    ),
}
SPECS = {name: ToolSpec("validation", config={"schema": case[0]}) for name, case in CASES.items()}
SPECS["python"] = ToolSpec("python", argument="code")
LATER_CODE = "print('the later call ran')\n"


@pytest.fixture(scope="module", autouse=True)
def warm_workers() -> None:
    # As in a process that has served before: a first validation worker would spend the
    # call importing jsonschema.
    run_tool("python", "pass\n")
    run_tool("validation", '{"city": "Oslo"}', config={"schema": WEATHER})


def positions() -> Iterator[tuple[str, int, list[str]]]:
    """Every case with its invalid field at every position (first, middle, last), the other
    fields around it in two orders."""
    for name, (_, valid, bad, _, _) in CASES.items():
        others = [key for key in valid if key != bad]
        orders = {tuple(others), tuple(reversed(others))}
        for order, at in itertools.product(sorted(orders), range(len(valid))):
            yield name, at, [*order[:at], bad, *order[at:]]


POSITIONS = list(positions())


def ids(case: tuple[str, int, list[str]]) -> str:
    name, at, order = case
    where = "first" if at == 0 else "last" if at == len(order) - 1 else "middle"
    return f"{name}-{where}-{','.join(order)}"


def arguments(name: str, order: list[str]) -> str:
    _, valid, bad, value, _ = CASES[name]
    return json.dumps({key: value if key == bad else valid[key] for key in order})


def call_chunks(index: int, name: str, text: str, size: int = 4) -> list[Any]:
    pieces = [text[i : i + size] for i in range(0, len(text), size)]
    return [chunk(index, name=name), *(chunk(index, p) for p in pieces)]


class Stream:
    """The server's stream: the chunks at a decoding pace, counting what was read, closable
    (closing makes the server stop decoding)."""

    def __init__(self, chunks: list[Any], pace_s: float = 0.01) -> None:
        self.chunks, self.pace_s = chunks, pace_s
        self.read = 0
        self.closed = False

    def __iter__(self) -> Iterator[Any]:
        for item in self.chunks:
            if self.closed:
                return
            self.read += 1
            yield item
            time.sleep(self.pace_s)

    def close(self) -> None:
        self.closed = True


def later_calls(first: int, count: int = 2) -> list[Any]:
    """Calls after the invalid one: python code long enough to take ~2 s to stream."""
    code = LATER_CODE + "".join(f"x{i} = {i}\n" for i in range(40))
    text = json.dumps({"code": code})
    return [c for k in range(count) for c in call_chunks(first + k, "python", text, size=2)]


def assert_not_run(call) -> None:
    assert call.result.status == "aborted"
    assert call.result.error.startswith("not run: an earlier tool call aborted the message")
    assert call.result.timeline.units == []  # nothing reached its tool
    assert "the later call ran" not in call.result.output


@pytest.mark.parametrize("case", POSITIONS, ids=[ids(c) for c in POSITIONS])
def test_an_invalid_field_stops_the_stream_at_any_position(case):
    name, _, order = case
    reason = CASES[name][4]
    stream = Stream([*call_chunks(0, name, arguments(name, order)), *later_calls(1)])
    calls = run_tool_calls(stream, SPECS)

    assert calls.aborted == reason
    assert stream.closed and stream.read < len(stream.chunks)  # the stream stopped early
    first, *later = calls.calls
    assert (first.result.status, first.result.error) == ("aborted", reason)
    assert calls.tool_messages()[0]["content"] == reason
    for call in later:
        assert_not_run(call)
    # Every call of the assistant message has its answer, as the next request needs.
    assert [m["tool_call_id"] for m in calls.tool_messages()] == [c.id for c in calls.calls]


@pytest.mark.parametrize("case", POSITIONS, ids=[ids(c) for c in POSITIONS])
def test_a_late_verdict_still_stops_the_calls_after_it(case):
    # The whole message arrives at once (no pacing): the verdict comes after the stream
    # ended, and still no later call runs.
    name, _, order = case
    calls = PartialToolCalls(SPECS)
    for item in [*call_chunks(0, name, arguments(name, order)), *later_calls(1)]:
        calls.feed(item)
    result = calls.finish()
    calls.close()

    assert result.aborted == CASES[name][4]
    assert result.calls[0].result.status == "aborted"
    for call in result.calls[1:]:
        assert_not_run(call)


@pytest.mark.parametrize("name", list(CASES))
def test_the_only_call_aborting_after_the_stream_ended_sets_aborted(name):
    _, valid, bad, _, reason = CASES[name]
    order = [*(k for k in valid if k != bad), bad]  # the invalid field last
    last = chunk(0, finish="tool_calls")
    calls = run_tool_calls(Stream([*call_chunks(0, name, arguments(name, order)), last]), SPECS)
    assert calls.aborted == reason
    assert calls.calls[0].result.status == "aborted"


def test_valid_calls_all_run_in_order():
    weather = json.dumps(CASES["weather"][1])
    stream = Stream([*call_chunks(0, "weather", weather), *later_calls(1, count=2)], pace_s=0.0)
    calls = run_tool_calls(stream, SPECS)
    assert calls.aborted is None and stream.read == len(stream.chunks)
    assert [c.result.status for c in calls.calls] == ["ok", "ok", "ok"]
    assert [c.result.output.splitlines()[0] for c in calls.calls[1:]] == [
        "the later call ran",
        "the later call ran",
    ]


def test_a_held_call_runs_its_units_as_decoded():
    # A call held while the call before it may abort keeps when each unit was decoded;
    # it is sent once that call's verdict is in.
    weather = json.dumps(CASES["weather"][1])
    calls = PartialToolCalls(SPECS)
    for item in [*call_chunks(0, "weather", weather), *later_calls(1, count=1)]:
        calls.feed(item)
    result = calls.finish()
    calls.close()
    units = result.calls[1].result.timeline.units
    assert result.calls[1].result.status == "ok" and units
    assert all(u.sent_at is not None and u.sent_at >= u.decoded_at for u in units)


def test_python_abort_on_error_after_its_code_closed_stops_the_message():
    # The code field closes before the call's JSON does: the statement's failure arrives
    # after the tool's input ended, as a last field's verdict does.
    spec = ToolSpec("python", argument="code", config={"abort_on_error": True})
    text = json.dumps({"code": "x = 1\n1/0\n", "note": "then more"})
    stream = Stream([*call_chunks(0, "checked", text), *later_calls(1)])
    calls = run_tool_calls(stream, {**SPECS, "checked": spec})

    assert calls.aborted == "ZeroDivisionError: division by zero"
    assert stream.closed and stream.read < len(stream.chunks)
    assert calls.calls[0].result.status == "error"
    for call in calls.calls[1:]:
        assert_not_run(call)
