"""Any function, any MCP tool, in the OpenAI helper: each call starts when its own arguments
close, checked against its schema; calls run at once; results in call order.

Chunks are built here (as the SDK parses them); the MCP servers are real: the test server
(tests/mcp_servers/tools_server.py) over stdio, started and ended through the SDK, and over
streamable HTTP, in a subprocess of the test."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time

import psutil
import pytest
from chat_chunks import chunk
from mcp_servers.fixtures import STDIO_COMMAND, http_server

from conveyor_sgl import McpServer, ToolSpec, run_tool_calls
from conveyor_sgl.primitives.openai_tools import (
    PartialToolCalls,
    tool_declarations,
    tool_specs,
)
from conveyor_sgl.runtime.mcp_client import McpError
from conveyor_sgl.tools.registry import ToolConfigError

pytestmark = pytest.mark.timeout(120)


def streamed(calls: list[tuple[str, dict]], gap_s: float, fed: list[tuple[int, float]]):
    """The chunks of ``calls``, a few characters each, ``gap_s`` apart (a model writing);
    ``fed`` gets (call index, when its last chunk was handed on)."""
    for index, (name, arguments) in enumerate(calls):
        text = json.dumps(arguments)
        yield chunk(index, name=name)
        for i in range(0, len(text), 6):
            time.sleep(gap_s)
            fed.append((index, time.monotonic()))
            yield chunk(index, text[i : i + 6])
    yield chunk(len(calls) - 1, finish="tool_calls")


LOG: list[tuple[str, float, float]] = []


def get_weather(city: str, unit: str = "c") -> dict:
    """Current weather in a city."""
    start = time.monotonic()
    time.sleep(0.4)
    LOG.append(("get_weather", start, time.monotonic()))
    return {"city": city, "temperature": 3, "unit": unit}


async def search_flights(origin: str, destination: str) -> list:
    """Flights between two airports."""
    start = time.monotonic()
    await asyncio.sleep(0.4)
    LOG.append(("search_flights", start, time.monotonic()))
    return [{"from": origin, "to": destination, "price": 120}]


def book_hotel(city: str, nights: int) -> str:
    start = time.monotonic()
    time.sleep(0.4)
    LOG.append(("book_hotel", start, time.monotonic()))
    return f"booked {nights} nights in {city}"


TOOLS = {"get_weather": get_weather, "search_flights": search_flights, "book_hotel": book_hotel}
THREE = [
    ("get_weather", {"city": "Oslo"}),
    ("search_flights", {"origin": "OSL", "destination": "BCN"}),
    ("book_hotel", {"city": "Barcelona", "nights": 2}),
]


@pytest.mark.timing
def test_each_call_starts_while_the_later_ones_are_written():
    LOG.clear()
    fed: list[tuple[int, float]] = []
    calls = run_tool_calls(streamed(THREE, 0.04, fed), TOOLS)

    assert [c.name for c in calls.calls] == ["get_weather", "search_flights", "book_hotel"]
    assert [m["content"] for m in calls.tool_messages()] == [
        '{"city": "Oslo", "temperature": 3, "unit": "c"}',
        '[{"from": "OSL", "to": "BCN", "price": 120}]',
        "booked 2 nights in Barcelona",
    ]
    stream_end = max(t for _, t in fed)
    for index, call in enumerate(calls.calls):
        (unit,) = call.result.timeline.units
        last_own = max(t for i, t in fed if i == index)
        # Started right after its own last chunk, before any chunk of a later call.
        assert last_own <= unit.started_at < last_own + 0.2
        later = [t for i, t in fed if i > index]
        if later:
            assert unit.started_at < min(later)
    assert calls.calls[0].result.timeline.units[0].started_at < stream_end - 0.3
    # Three calls of 0.4 s: done 0.4 s after the stream, not 1.2 s.
    finished = max(c.result.timeline.units[0].finished_at for c in calls.calls)
    assert finished - stream_end < 0.7


def test_the_baseline_starts_every_call_when_the_stream_ends():
    fed: list[tuple[int, float]] = []
    specs = {name: ToolSpec(fn, partial=False) for name, fn in TOOLS.items()}
    calls = run_tool_calls(streamed(THREE, 0.01, fed), specs)
    stream_end = max(t for _, t in fed)
    starts = [c.result.timeline.units[0].started_at for c in calls.calls]
    assert min(starts) >= stream_end
    assert [c.result.status for c in calls.calls] == ["ok"] * 3


def test_results_come_back_in_call_order_whatever_finishes_first():
    def slow(n: int) -> int:
        time.sleep(0.3)
        return n

    def fast(n: int) -> int:
        return n

    stream = [
        chunk(0, '{"n": 0}', name="slow"),
        chunk(1, '{"n": 1}', name="fast"),
        chunk(2, '{"n": 2}', name="fast"),
    ]
    calls = run_tool_calls(stream, {"slow": slow, "fast": fast})
    assert [m["content"] for m in calls.tool_messages()] == ["0", "1", "2"]
    assert [m["tool_call_id"] for m in calls.tool_messages()] == ["call_0", "call_1", "call_2"]
    finished = [c.result.timeline.units[0].finished_at for c in calls.calls]
    assert finished[0] > finished[1]


def test_failures_are_results_never_exceptions_out_of_the_stream():
    def broken(x: int) -> int:
        raise RuntimeError("disk full")

    def stuck() -> str:
        threading.Event().wait(20)
        return "never"

    stream = [
        chunk(0, '{"x": "not a number"}', name="broken"),
        chunk(1, '{"x": 1}', name="broken"),
        chunk(2, "{}", name="stuck"),
        chunk(3, '{"x": 1', name="broken"),  # cut off by the stream's end
        chunk(4, '{"city": "Oslo"}', name="get_weather"),
    ]
    tools = {"broken": broken, "stuck": ToolSpec(stuck, timeout_s=0.3), "get_weather": get_weather}
    calls = run_tool_calls(stream, tools)
    results = [c.result for c in calls.calls]
    assert [r.status for r in results] == ["error", "error", "timeout", "error", "ok"]
    assert results[0].error == (
        "tool call 'broken': invalid argument 'x': 'not a number' is not of type 'integer'"
    )
    assert results[1].error == "function 'broken' raised RuntimeError: disk full"
    assert "within its deadline of 0.3s" in results[2].error
    assert "cut off" in results[3].error
    assert calls.aborted is None
    contents = [m["content"] for m in calls.tool_messages()]
    assert contents[1] == "function 'broken' raised RuntimeError: disk full"


def test_the_declared_schema_is_the_one_checked():
    declared = [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "parameters": {
                    "type": "object",
                    "properties": {"city": {"type": "string", "minLength": 3}},
                    "required": ["city"],
                },
            },
        }
    ]
    stream = [chunk(0, '{"city": "Os"}', name="get_weather")]
    calls = run_tool_calls(stream, {"get_weather": get_weather}, declarations=declared)
    assert calls.calls[0].result.error == (
        "tool call 'get_weather': invalid argument 'city': 'Os' is too short"
    )
    # The caller's spec is not changed by a request's declarations.
    spec = ToolSpec(get_weather)
    tool_specs({"get_weather": spec}, declared)
    assert spec.function.schema["properties"]["city"] == {"title": "City", "type": "string"}


def test_tool_declarations_declare_the_functions():
    (weather, flights) = tool_declarations(
        {
            "get_weather": get_weather,
            "flights": search_flights,
            "python": ToolSpec("python", "code"),
        }
    )
    assert weather["function"]["name"] == "get_weather"
    assert weather["function"]["description"] == "Current weather in a city."
    assert weather["function"]["parameters"]["required"] == ["city"]
    assert flights["function"]["name"] == "flights"


def test_a_function_spec_that_cannot_run_fails_when_written():
    with pytest.raises(ToolConfigError, match="argument= and config= are for registered tools"):
        ToolSpec(get_weather, argument="city")
    with pytest.raises(ToolConfigError, match="not a valid JSON Schema"):
        ToolSpec(get_weather, schema={"type": 5})
    with pytest.raises(ToolConfigError, match="schema= and timeout_s= are for functions"):
        ToolSpec("python", argument="code", timeout_s=3)
    with pytest.raises(ToolConfigError, match="expected a callable or an MCP tool"):
        ToolSpec(42)  # type: ignore[arg-type]


def test_a_registered_tool_keeps_its_own_path_beside_functions():
    stream = [
        chunk(0, '{"code": "print(6 * 7)\\n"}', name="python"),
        chunk(1, '{"city": "Oslo"}', name="get_weather"),
    ]
    calls = run_tool_calls(
        stream, {"python": ToolSpec("python", argument="code"), "get_weather": get_weather}
    )
    assert calls.tool_messages()[0]["content"] == "42\n"
    assert calls.calls[0].result.timeline.units[0].text == "print(6 * 7)\n"


@pytest.fixture(scope="module")
def stdio_mcp():
    with McpServer.stdio(STDIO_COMMAND, name="test-tools") as server:
        yield server


def test_mcp_tools_over_stdio_run_at_once_and_in_order(stdio_mcp):
    assert sorted(stdio_mcp.tools) == ["add", "fail", "probe", "slow_echo"]
    assert stdio_mcp.tool("add").schema["required"] == ["a", "b"]
    tools = {name: stdio_mcp.tool(name) for name in ("add", "slow_echo", "fail")}
    stream = [
        chunk(0, '{"text": "first", "seconds": 0.5}', name="slow_echo"),
        chunk(1, '{"text": "second", "seconds": 0.5}', name="slow_echo"),
        chunk(2, '{"a": 2, "b": 40}', name="add"),
        chunk(3, '{"a": "two", "b": 40}', name="add"),
        chunk(4, '{"message": "no"}', name="fail"),
    ]
    start = time.monotonic()
    calls = run_tool_calls(stream, tools)
    took = time.monotonic() - start
    results = [c.result for c in calls.calls]
    assert [r.status for r in results] == ["ok", "ok", "ok", "error", "error"]
    first, second = (json.loads(r.output) for r in results[:2])
    assert (first["text"], second["text"]) == ("first", "second")
    assert second["started"] < first["finished"]  # they overlapped in the server
    assert took < 0.95, f"two 0.5 s calls took {took:.2f} s"
    assert results[2].output == "42"
    assert "invalid argument 'a': 'two' is not of type 'integer'" in results[3].error
    assert results[3].units[0]["started_at"] is None  # refused before the server saw it
    assert results[4].error  # the server's error text


def test_an_mcp_server_we_start_is_ended_by_us():
    with McpServer.stdio(STDIO_COMMAND) as server:
        pid = json.loads(
            run_tool_calls([chunk(0, "{}", name="probe")], {"probe": server.tool("probe")})
            .calls[0]
            .content
        )["pid"]
        assert psutil.pid_exists(pid)
    deadline = time.monotonic() + 10
    while psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
        assert time.monotonic() < deadline, "the MCP server outlived its context"
        time.sleep(0.05)


def test_an_mcp_server_that_does_not_start_is_a_clear_error():
    with pytest.raises(McpError, match="could not start"):
        McpServer.stdio(["/nonexistent/mcp-server"], connect_timeout_s=10).start()
    with pytest.raises(McpError, match="did not start and list its tools within 1s"):
        McpServer.stdio(["sleep", "30"], connect_timeout_s=1, close_timeout_s=8).start()
    with McpServer.stdio(STDIO_COMMAND) as server, pytest.raises(ValueError, match="no tool 'x'"):
        server.tool("x")


def test_mcp_tools_over_streamable_http():
    with http_server() as url, McpServer.http(url) as server:
        tools = {"add": server.tool("add"), "slow_echo": server.tool("slow_echo", timeout_s=0.2)}
        stream = [
            chunk(0, '{"a": 1, "b": 2}', name="add"),
            chunk(1, '{"text": "late", "seconds": 3}', name="slow_echo"),
        ]
        calls = run_tool_calls(stream, tools)
        assert calls.calls[0].content == "3"
        assert calls.calls[1].result.status == "timeout"


def test_a_chunk_loop_of_your_own():
    calls = PartialToolCalls({"get_weather": get_weather})
    calls.feed(chunk(0, '{"city": ', name="get_weather"))
    calls.feed(chunk(0, '"Oslo"}'))
    (unit,) = calls._streams[0].driver.session.timeline.units
    assert unit.sent_at is not None  # on its way before finish()
    result = calls.finish().calls[0].result
    assert json.loads(result.output)["city"] == "Oslo"


def test_an_mcp_server_we_start_may_run_confined(tmp_path):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    with listener, McpServer.stdio(STDIO_COMMAND, confine=True) as server:
        assert {"netns", "landlock", "syscalls", "caps"} <= set(server.sandbox)
        calls = run_tool_calls(
            [chunk(0, json.dumps({"port": port, "path": __file__}), name="probe")],
            {"probe": server.tool("probe")},
        )
    facts = json.loads(calls.calls[0].content)
    assert facts["CapEff"] == "0000000000000000" and facts["interfaces"] == ["lo"]
    assert facts["connect"] != "ok"
    assert facts["read"].startswith("PermissionError")  # the tests, beside it: not its files
    with pytest.raises(McpError, match="not a URL"):
        McpServer.http("http://127.0.0.1:1/mcp", confine=True)


def test_a_function_after_a_call_that_may_abort_waits_for_its_verdict():
    # A validation call may stop the message at its last field: the function after it is
    # held until that verdict, and never runs after an abort.
    schema = {"type": "object", "properties": {"unit": {"enum": ["c", "f"]}}}
    ran = threading.Event()

    def later() -> str:
        ran.set()
        return "ran"

    tools = {"check": ToolSpec("validation", config={"schema": schema}), "later": later}
    stream = [chunk(0, '{"unit": "kelvin"}', name="check"), chunk(1, "{}", name="later")]
    calls = run_tool_calls(stream, tools)
    assert calls.aborted == "invalid argument 'unit': 'kelvin' is not one of ['c', 'f']"
    assert calls.calls[1].result.status == "aborted" and not ran.is_set()
    ok = run_tool_calls(
        [chunk(0, '{"unit": "c"}', name="check"), chunk(1, "{}", name="later")], tools
    )
    assert [c.result.status for c in ok.calls] == ["ok", "ok"] and ran.is_set()
