"""The OpenAI helper: tool calls from streamed chat completions run while they are written.

Server tests use the real embedded SGLang server's ``/v1/chat/completions`` with the qwen25
tool-call parser (``<tool_call>\\n{json}\\n</tool_call>``); the assistant output is forced to
a reference tool call with SGLang's chat ``regex`` extension. The rest feed the helper
``ChatCompletionChunk`` objects built here; every test runs real tool workers.
"""

from __future__ import annotations

import json
import re
import statistics
import time
from collections.abc import Iterator

import openai
import pytest
from chat_chunks import chunk

from conveyor_sgl import run_tool
from conveyor_sgl.primitives.json_field_stream import JsonFieldStream
from conveyor_sgl.primitives.openai_tools import PartialToolCalls, ToolSpec, run_tool_calls

pytestmark = pytest.mark.timeout(300)

CODE = (
    "import math\n"
    "values = [i * i for i in range(10)]\n"
    "total = sum(values)\n"
    'print("total", total)\n'
    "root = math.isqrt(total)\n"
    'print("root", root)\n'
    'label = "caf\\u00e9 \\"ok\\""\n'
    "print(label)\n"
)
OUTPUT = 'total 285\nroot 16\ncafé "ok"\n'
SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "unit": {"enum": ["c", "f"]}, "note": {}},
    "required": ["city"],
}
FUNCTIONS = [
    {"type": "function", "function": {"name": "python", "parameters": {"type": "object"}}},
    {"type": "function", "function": {"name": "weather", "parameters": SCHEMA}},
]
SPECS = {
    "python": ToolSpec("python", argument="code"),
    "weather": ToolSpec("validation", config={"schema": SCHEMA}),
}


def forced_calls(*calls: tuple[str, dict]) -> str:
    """A regex that forces the qwen25 tool-call text of ``calls``."""
    text = "\n".join(
        "<tool_call>\n" + json.dumps({"name": n, "arguments": a}) + "\n</tool_call>"
        for n, a in calls
    )
    return re.escape(text)


@pytest.fixture(scope="module")
def client(flagged_server) -> Iterator[openai.OpenAI]:
    # The session's shared server runs with --tool-call-parser qwen25 (tests/conftest.py).
    # Warm tool workers, as in a process that has served before (a worker preloads the tools
    # of recent sessions): a first validation worker would spend the call importing jsonschema.
    run_tool("python", "pass\n")
    run_tool("validation", '{"city": "Oslo"}', config={"schema": SCHEMA})
    yield openai.OpenAI(base_url=flagged_server.url + "/v1", api_key="none", timeout=120)


def create(client: openai.OpenAI, regex: str, messages: list | None = None, **kw):
    return client.chat.completions.create(
        model="default",
        messages=messages or [{"role": "user", "content": "Use the tools."}],
        tools=FUNCTIONS,
        stream=True,
        temperature=0,
        max_tokens=600,
        extra_body={"regex": regex},
        **kw,
    )


class Arrivals:
    """Passes the chunks through, noting when each decoded character of a field arrived."""

    def __init__(self, stream, field: str) -> None:
        self.stream, self.reader = stream, JsonFieldStream(field)
        self.times: list[float] = []  # per decoded character
        self.last_chunk_at = 0.0  # the last chunk with argument text

    def __iter__(self):
        for event in self.stream:
            now = time.monotonic()
            for piece in (event.choices[0].delta.tool_calls or []) if event.choices else []:
                if piece.function and piece.function.arguments:
                    self.last_chunk_at = now
                    self.times += [now] * len(self.reader.feed(piece.function.arguments))
            yield event


@pytest.mark.timing
@pytest.mark.server
def test_statements_run_while_the_code_argument_is_written(client):
    t0 = time.monotonic()
    arrivals = Arrivals(create(client, forced_calls(("python", {"code": CODE}))), "code")
    calls = run_tool_calls(arrivals, SPECS, t0=t0)

    (call,) = calls.calls
    assert (call.name, call.result.status, call.result.output) == ("python", "ok", OUTPUT)
    assert json.loads(call.arguments) == {"code": CODE}
    assert calls.finish_reason == "tool_calls"
    assert calls.tool_messages() == [{"role": "tool", "tool_call_id": call.id, "content": OUTPUT}]
    units = call.result.timeline.units
    assert [u.text for u in units] == CODE.splitlines(keepends=True)
    assert units[0].started_at < arrivals.last_chunk_at  # ran while the string was written

    # From the token that ends a statement (its newline) to its start in the tool.
    ends = [sum(len(u.text) for u in units[: k + 1]) - 1 for k in range(len(units))]
    latency = [u.started_at - arrivals.times[end] for u, end in zip(units, ends, strict=True)]
    dispatch = [u.started_at - u.decoded_at for u in units]
    print(
        f"\nOpenAI helper, statement's last token -> start in the tool: median "
        f"{statistics.median(latency) * 1e3:.2f} ms, max {max(latency) * 1e3:.2f} ms "
        f"({len(units)} statements); unit decoded -> started: median "
        f"{statistics.median(dispatch) * 1e3:.2f} ms"
    )
    assert statistics.median(latency) < 0.5

    # The messages are what the next request takes: the server accepts them as history.
    history = [{"role": "user", "content": "Use the tools."}, *calls.messages()]
    reply = client.chat.completions.create(model="default", messages=history, max_tokens=4)
    assert reply.choices[0].message is not None


@pytest.mark.server
def test_an_invalid_field_stops_the_stream_early(client):
    arguments = {"city": "Paris", "unit": "kelvin", "note": "x " * 300}
    calls = run_tool_calls(create(client, forced_calls(("weather", arguments))), SPECS)

    (call,) = calls.calls
    assert call.result.status == "aborted"
    assert calls.aborted == "invalid argument 'unit': 'kelvin' is not one of ['c', 'f']"
    assert calls.tool_messages()[0]["content"] == calls.aborted
    assert len(call.arguments) < len(json.dumps(arguments)) - 300  # the note was never decoded


@pytest.mark.server
@pytest.mark.parametrize(
    "arguments",
    [{"unit": "kelvin", "city": "Oslo"}, {"city": "Oslo", "unit": "kelvin"}],
    ids=["invalid-first", "invalid-last"],
)
def test_an_invalid_field_stops_the_message_whatever_its_position(client, arguments):
    # The last field's verdict arrives after its call ended: the stream still stops, and
    # the call after it never runs.
    code = "print('the later call ran')\n" + "".join(f"x{i} = {i}\n" for i in range(60))
    regex = forced_calls(("weather", arguments), ("python", {"code": code}))
    calls = run_tool_calls(create(client, regex), SPECS)

    reason = "invalid argument 'unit': 'kelvin' is not one of ['c', 'f']"
    assert calls.aborted == reason
    weather, *later = calls.calls
    assert weather.result.status == "aborted"
    for call in later:  # what was decoded of it, if anything, never ran
        assert call.result.status == "aborted" and call.result.timeline.units == []
        assert call.result.error.startswith("not run: an earlier tool call aborted")
        assert len(call.arguments) < len(json.dumps({"code": code}))  # decoding stopped


@pytest.mark.server
def test_parallel_calls_each_get_their_tool_message(client):
    weather = {"city": "Oslo", "unit": "c"}
    regex = forced_calls(("weather", weather), ("python", {"code": "print(6 * 7)\n"}))
    calls = run_tool_calls(create(client, regex), SPECS)

    assert [c.name for c in calls.calls] == ["weather", "python"]
    assert [m["content"] for m in calls.tool_messages()] == [json.dumps(weather), "42\n"]
    ids = [c["id"] for c in calls.assistant_message()["tool_calls"]]
    assert [m["tool_call_id"] for m in calls.tool_messages()] == ids


def test_split_escapes_reach_the_tool_decoded():
    pieces = ['{"co', 'de": "print(\\"a\\', "tb\\u00", 'e9\\")\\', "n", 'x = 1\\n"}']
    stream = [chunk(0, name="python"), *(chunk(0, p) for p in pieces)]
    calls = run_tool_calls(stream, SPECS)
    assert calls.calls[0].result.output == "a\tbé\n"
    assert [u.text for u in calls.calls[0].result.timeline.units] == [
        'print("a\tbé")\n',
        "x = 1\n",
    ]


def test_a_call_without_a_spec_is_left_to_the_caller():
    calls = run_tool_calls([chunk(0, '{"q": 1}', name="lookup")], SPECS)
    (call,) = calls.calls
    assert call.result is None and calls.tool_messages() == []
    assert calls.assistant_message()["tool_calls"][0]["function"]["arguments"] == '{"q": 1}'
    with pytest.raises(ValueError, match="has no ToolSpec"):
        call.message()


@pytest.mark.parametrize(
    ("pieces", "error"),
    [
        (['{"source": "print(1)"}'], "tool call 'python': the arguments have no string field"),
        (['{"code": "print(1)\\n'], "the string field 'code' was cut off"),
        (['{"code": 5}'], "expected a string value"),
    ],
)
def test_arguments_that_cannot_feed_the_tool_are_an_error_result(pieces, error):
    calls = PartialToolCalls(SPECS)
    for piece in [chunk(0, name="python"), *(chunk(0, p) for p in pieces)]:
        calls.feed(piece)
    result = calls.finish().calls[0].result
    assert result.status == "error" and error in result.error
    calls.close()


def test_a_spec_that_cannot_run_fails_when_written():
    with pytest.raises(ValueError, match="argument='code'"):
        ToolSpec("python")
    with pytest.raises(ValueError, match="unknown tool"):
        ToolSpec("no_such_tool")
