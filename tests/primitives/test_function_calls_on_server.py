"""Functions as tools against the real embedded server (the session's ``flagged_server``, with
the qwen25 tool-call parser): three independent calls of one streamed message each start
while the model is still writing the later ones; in a program, a ``partial_tool`` whose text
is a function's JSON arguments starts the call when they close."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator

import openai
import pytest
import sglang as sgl
from mcp_servers.fixtures import STDIO_COMMAND

from conveyor_sgl import McpServer, partial_tool, run_tool_calls, tool_declarations, tool_result

pytestmark = [pytest.mark.server, pytest.mark.timeout(300)]

STARTS: dict[str, float] = {}


def get_weather(city: str) -> dict:
    """The weather in a city."""
    STARTS["get_weather"] = time.monotonic()
    time.sleep(0.3)
    return {"city": city, "temperature": 4}


def search_flights(origin: str, destination: str, date: str) -> list:
    """Flights on a date."""
    STARTS["search_flights"] = time.monotonic()
    time.sleep(0.3)
    return [{"flight": "SK4711", "from": origin, "to": destination, "date": date}]


def book_hotel(city: str, nights: int, guests: int) -> str:
    """Book a hotel."""
    STARTS["book_hotel"] = time.monotonic()
    time.sleep(0.3)
    return f"booked {nights} nights for {guests} in {city}"


TOOLS = {"get_weather": get_weather, "search_flights": search_flights, "book_hotel": book_hotel}
CALLS = [
    ("get_weather", {"city": "Oslo"}),
    ("search_flights", {"origin": "Oslo", "destination": "Barcelona", "date": "2026-05-01"}),
    ("book_hotel", {"city": "Barcelona", "nights": 3, "guests": 2}),
]


def forced(calls) -> str:
    text = "\n".join(
        "<tool_call>\n" + json.dumps({"name": n, "arguments": a}) + "\n</tool_call>"
        for n, a in calls
    )
    return re.escape(text)


class Arrivals:
    """Passes the chunks through, noting when each call's argument text arrived."""

    def __init__(self, stream) -> None:
        self.stream = stream
        self.times: dict[int, list[float]] = {}

    def __iter__(self):
        for chunk in self.stream:
            now = time.monotonic()
            for piece in (chunk.choices[0].delta.tool_calls or []) if chunk.choices else []:
                if piece.function and piece.function.arguments:
                    self.times.setdefault(piece.index, []).append(now)
            yield chunk


@pytest.fixture(scope="module")
def client(flagged_server) -> Iterator[openai.OpenAI]:
    yield openai.OpenAI(base_url=flagged_server.url + "/v1", api_key="none", timeout=120)


@pytest.mark.timing
def test_three_calls_start_while_the_model_writes_the_later_ones(client):
    STARTS.clear()
    declarations = tool_declarations(TOOLS)
    t0 = time.monotonic()
    stream = client.chat.completions.create(
        model="default",
        messages=[{"role": "user", "content": "Plan my trip to Barcelona."}],
        tools=declarations,
        stream=True,
        temperature=0,
        max_tokens=400,
        extra_body={"regex": forced(CALLS)},
    )
    arrivals = Arrivals(stream)
    calls = run_tool_calls(arrivals, TOOLS, t0=t0, declarations=declarations)

    assert [c.name for c in calls.calls] == [name for name, _ in CALLS]
    assert [c.result.status for c in calls.calls] == ["ok"] * 3, [
        c.result.error for c in calls.calls
    ]
    assert json.loads(calls.calls[0].content) == {"city": "Oslo", "temperature": 4}
    times = arrivals.times
    assert sorted(times) == [0, 1, 2], "the parser streamed no arguments for some call"
    for index, call in enumerate(calls.calls):
        (unit,) = call.result.timeline.units
        started = unit.started_at
        assert started == pytest.approx(STARTS[call.name], abs=0.01)
        # It started after its own arguments closed and before the last argument text of
        # every later call arrived: while the model was writing them. (Within 10 ms, as
        # STARTS above: a busy CPU may run the start a fraction of a millisecond after the
        # last token of the call right after it, which the tiny model decodes ~1 ms apart.)
        assert started >= max(times[index]) - 0.001
        for later in range(index + 1, 3):
            assert started < max(times[later]) + 0.01, (index, later)
    first = calls.calls[0].result.timeline.units[0]
    stream_end = max(max(t) for t in times.values())
    print(
        "\nthree calls: started "
        + ", ".join(f"{c.result.timeline.units[0].started_at - t0:.3f}" for c in calls.calls)
        + f" s; the last arguments arrived at {stream_end - t0:.3f} s"
    )
    assert first.finished_at < stream_end or first.started_at < stream_end - 0.05

    # The messages are what the next request takes.
    history = [{"role": "user", "content": "Plan my trip."}, *calls.messages()]
    reply = client.chat.completions.create(model="default", messages=history, max_tokens=4)
    assert reply.choices[0].message is not None


ARGS = {"city": "Oslo"}
TRAILER = " " + "and then the model goes on writing a long note about the call it made. " * 3


@sgl.function
def weather_program(s, partial):
    s += sgl.user("What is the weather in Oslo?")
    s += sgl.assistant_begin()
    s += partial_tool(
        "call",
        tool=get_weather,
        partial=partial,
        max_tokens=200,
        regex=re.escape(json.dumps(ARGS) + TRAILER),
    )
    s += "\nResult: " + tool_result("call", timeout=30)
    s += sgl.assistant_end()


@pytest.mark.timing
def test_a_program_calls_the_function_when_its_json_closes(backend):
    starts = {}
    for partial in (False, True):
        state = weather_program.run(partial=partial)
        tool = state.get_meta_info("call")["tool"]
        assert tool["status"] == "ok", tool["error"]
        assert json.loads(tool["output"]) == {"city": "Oslo", "temperature": 4}
        assert state["call"] == json.dumps(ARGS) + TRAILER  # the text after it is the model's
        (unit,) = tool["units"]
        assert unit["text"] == json.dumps(ARGS)
        # How long after the JSON closed (the timeline's decode_finished_at here) it started.
        starts[partial] = unit["started_at"] - tool["decode_finished_at"]
    # The baseline calls it when the generation ends; partial execution when the JSON closed,
    # while the rest (~50 tokens) was still being decoded. Each measured within its own run:
    # two runs' decoding speeds differ by what the host's load does to them.
    assert starts[True] < starts[False] - 0.1, starts


@sgl.function
def mcp_program(s, add):
    s += sgl.user("Add 2 and 40.")
    s += sgl.assistant_begin()
    s += partial_tool("sum", tool=add, max_tokens=40, regex=re.escape('{"a": 2, "b": 40}'))
    s += " = " + tool_result("sum", timeout=30)
    s += sgl.assistant_end()


def test_a_program_calls_an_mcp_tool(backend):
    with McpServer.stdio(STDIO_COMMAND) as server:
        state = mcp_program.run(add=server.tool("add"))
        state.sync()  # the program runs in SGLang's executor thread: the server must outlive it
    tool = state.get_meta_info("sum")["tool"]
    assert (tool["status"], tool["output"]) == ("ok", "42"), tool["error"]
    assert '{"a": 2, "b": 40} = 42' in state.text()
