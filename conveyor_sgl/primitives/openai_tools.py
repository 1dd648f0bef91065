"""Partial tool execution for the OpenAI-compatible API: streamed chat completions with tools.

The ``openai`` SDK streams a tool call's arguments as ``delta.tool_calls[i].function.arguments``
pieces. ``run_tool_calls`` reads them as they arrive and runs each call in a tool session
while the model is still writing it, then returns what the next request needs:

    stream = client.chat.completions.create(model=..., messages=messages, tools=[...],
                                            stream=True)
    calls = run_tool_calls(stream, {"python": ToolSpec("python", argument="code")})
    messages += calls.messages()      # the assistant message, then one "tool" message per call
    calls.timelines()                 # per call: status, output, units with their timeline

``ToolSpec(tool, argument=None)``: without ``argument`` the whole arguments JSON goes to the
tool (a ``json``-parser tool such as ``validation`` checks each field as it closes); with
``argument="code"`` the decoded characters of that string field stream into the tool's own
parser (python: each finished statement runs while the string is still being written).
For a chunk loop of your own (to show the text as it streams), use ``PartialToolCalls``:
``feed(chunk)`` per chunk, then ``finish()``.

Any function, any MCP tool: a plain Python callable (sync or async) or a tool of an MCP
server (``McpServer.stdio([...])`` / ``McpServer.http(url)``, ``server.tool(name)``) is a
tool too, given as it is in ``tools`` or as ``ToolSpec(fn, schema=..., timeout_s=...)``.
Its call starts the moment its own arguments are a complete JSON object (the delta that holds
the closing ``}``), checked first against its JSON Schema (``ToolSpec(schema=)``, else the
``parameters`` the request's ``tools`` list declares for it (``declarations=``), else the MCP
tool's ``inputSchema``, else one derived from the callable's signature); a bad argument is that
call's ``error`` result. Calls run at once (``runtime/function_call.py``: threads for sync
callables, one event loop for async ones and MCP), and the results come back in call order.
``tool_declarations(tools)`` is the ``tools`` list to send for them.

A call's tool may abort the message (``validation`` at an invalid field, ``python`` with
``abort_on_error``): the stream is closed, ``calls.aborted`` says why, and the calls after
that one never run (each gets an ``aborted`` result saying so), whichever field it was.
The verdict on a call's last field comes from its worker after the call has ended, so a
later call's tool gets its arguments only once the calls before it that may abort have
given theirs; its text is kept meanwhile, with when it arrived (the units' ``decoded_at``).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, TypeAlias

from conveyor_sgl.errors import ConveyorError
from conveyor_sgl.primitives.json_field_stream import FieldStreamError, JsonFieldStream
from conveyor_sgl.runtime.function_call import (
    FunctionCallError,
    FunctionSession,
    FunctionTool,
    as_function_tool,
)
from conveyor_sgl.runtime.session import ToolSession
from conveyor_sgl.runtime.timeline import ToolResult, ToolTimeline, appended_text
from conveyor_sgl.runtime.tool_call import CallDriver, CallSession
from conveyor_sgl.tools.registry import CheckedTool, ToolConfigError, check_tool


class ToolCallError(ConveyorError, ValueError):
    """A tool call asked for what it does not have (a result, without a ToolSpec)."""


@dataclass(frozen=True)
class ToolSpec:
    """How the calls of one function run: which tool, fed from which part of the arguments.

    ``tool`` is a registered tool name ("python", "validation", ...), or a function: a Python
    callable or an MCP tool, called once its whole arguments object has closed, checked
    against ``schema`` (None: the declared one, the MCP tool's or the signature's) and given
    up after ``timeout_s``. ``partial=False`` is the sequential baseline: a tool starts when
    its call ends, a function when the stream ends."""

    tool: str | Callable[..., Any] | FunctionTool
    argument: str | None = None  # a string field streamed into the tool; None: the whole JSON
    config: Mapping[str, Any] | None = None
    partial: bool = True  # False: the sequential baseline (the tool starts when the call ends)
    schema: Mapping[str, Any] | None = None  # a function's: its arguments' JSON Schema
    timeout_s: float | None = None  # a function's deadline per call, from its start
    checked: CheckedTool | None = field(init=False, repr=False, compare=False)
    function: FunctionTool | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "checked", None)
        object.__setattr__(self, "function", None)
        if not isinstance(self.tool, str):
            if self.argument is not None or self.config is not None:
                raise ToolConfigError(
                    f"ToolSpec({self.tool!r}): a function takes its whole arguments object; "
                    "argument= and config= are for registered tools"
                )
            try:
                function = as_function_tool(self.tool, schema=self.schema, timeout_s=self.timeout_s)
            except FunctionCallError as e:
                raise ToolConfigError(str(e)) from None
            object.__setattr__(self, "function", function)
            return
        if self.schema is not None or self.timeout_s is not None:
            raise ToolConfigError(
                f"ToolSpec({self.tool!r}): schema= and timeout_s= are for functions; a "
                "registered tool takes its options in config="
            )
        # Fail when the spec is written, as partial_tool does, not in the middle of a stream;
        # the checked tool is what every call's session starts from (no second check).
        checked = check_tool(self.tool, dict(self.config or {}))
        object.__setattr__(self, "checked", checked)
        resolved = checked.tool
        if self.argument is None and resolved.parser != "json":
            raise ToolConfigError(
                f"tool {self.tool!r} reads {resolved.parser!r} text, not JSON arguments: "
                "name the string field it runs, e.g. ToolSpec('python', argument='code')"
            )


@dataclass
class ToolCall:
    """One tool call of the assistant message, with its tool's result (None: no ToolSpec)."""

    index: int
    id: str = ""
    name: str = ""
    arguments: str = ""  # the JSON text as streamed (cut short where a tool aborted it)
    result: ToolResult | None = None

    @property
    def content(self) -> str:
        """What the model reads: the tool's output, then its error, if any."""
        if self.result is None:
            raise ToolCallError(
                f"tool call {self.id} ({self.name!r}) has no ToolSpec: answer it with your own "
                '{"role": "tool", "tool_call_id": ..., "content": ...} message, or give '
                f"run_tool_calls a ToolSpec for {self.name!r}"
            )
        return appended_text(self.result.status, self.result.output, self.result.error)

    def message(self) -> dict[str, Any]:
        """The ``{"role": "tool", ...}`` entry that answers this call."""
        return {"role": "tool", "tool_call_id": self.id, "content": self.content}


@dataclass
class ToolCalls:
    """What a streamed completion asked for and what its tools returned."""

    calls: list[ToolCall]
    content: str | None  # the assistant's text beside its tool calls
    finish_reason: str | None
    # A call's tool aborted the message (an invalid field), and why: the stream was closed
    # if it had not ended, and the calls after that one never ran.
    aborted: str | None = None

    def assistant_message(self) -> dict[str, Any]:
        tool_calls = [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
            for c in self.calls
        ]
        return {"role": "assistant", "content": self.content, "tool_calls": tool_calls}

    def tool_messages(self) -> list[dict[str, Any]]:
        """One message per call that ran; calls without a ToolSpec are yours to answer."""
        return [c.message() for c in self.calls if c.result is not None]

    def messages(self) -> list[dict[str, Any]]:
        """The entries to append to ``messages`` for the next request."""
        return [self.assistant_message(), *self.tool_messages()]

    def timelines(self) -> dict[str, dict[str, Any]]:
        return {c.id: c.result.to_dict() for c in self.calls if c.result is not None}


class _Verdict(Enum):
    """Whether a call may still stop the message: its tool can abort once its input ended
    (the last field is checked in the worker after the stream has moved on)."""

    PENDING = "pending"
    OK = "ok"
    ABORTED = "aborted"


@dataclass
class _CallStream:
    """One call while it streams: its tool's driver and, for a field, the field reader."""

    call: ToolCall
    spec: ToolSpec | None = None
    driver: CallDriver | None = None
    reader: JsonFieldStream | None = None
    error: str | None = None  # the arguments could not feed the tool
    ended: bool = False  # end_input sent
    complete: bool = False  # all its arguments arrived (a later call began, or the stream ended)
    # While an earlier call may still abort the message: the argument deltas (with when
    # they arrived) that this call's tool has not been given, so that it runs nothing yet.
    held: list[tuple[str, float]] | None = None
    not_run: str | None = None  # an earlier call aborted the message: this one never ran
    parts: list[str] = field(default_factory=list)


ToolsArg: TypeAlias = Mapping[str, "ToolSpec | Callable[..., Any] | FunctionTool"]


def tool_specs(
    tools: ToolsArg, declarations: Iterable[Mapping[str, Any]] | None = None
) -> dict[str, ToolSpec]:
    """``tools`` as ToolSpecs (a callable or an MCP tool becomes ``ToolSpec(it)``); a function
    without a schema of its own takes the ``parameters`` its declaration gives (the request's
    ``tools`` list)."""
    declared = _declared_parameters(declarations)
    specs = {}
    for name, value in tools.items():
        spec = value if isinstance(value, ToolSpec) else ToolSpec(value)
        function = spec.function
        if function is not None and spec.schema is None and name in declared:
            spec = copy.copy(spec)  # the caller's spec stays as it was
            try:
                object.__setattr__(spec, "function", function.with_schema(declared[name]))
            except FunctionCallError as e:
                raise ToolConfigError(f"the declared parameters of {name!r}: {e}") from None
        specs[name] = spec
    return specs


def tool_declarations(tools: ToolsArg) -> list[dict[str, Any]]:
    """The OpenAI ``tools`` list that declares the functions of ``tools`` (name, description,
    parameters: the schema each call is checked against). Registered tools are left out:
    their declaration is yours (their parameters are not theirs to say)."""
    out = []
    for name, spec in tool_specs(tools).items():
        if spec.function is not None:
            declaration = spec.function.declaration()
            declaration["function"]["name"] = name
            out.append(declaration)
    return out


def _declared_parameters(
    declarations: Iterable[Mapping[str, Any]] | None,
) -> dict[str, Mapping[str, Any]]:
    out = {}
    for entry in declarations or []:
        function = entry.get("function") if isinstance(entry, Mapping) else None
        if isinstance(function, Mapping) and isinstance(function.get("parameters"), Mapping):
            out[str(function.get("name"))] = function["parameters"]
    return out


class PartialToolCalls:
    """Feeds each tool call's arguments to a tool session as the chunks of one choice arrive."""

    def __init__(
        self,
        tools: ToolsArg,
        *,
        timeout_s: float = 30.0,  # for each result after the stream ended (one deadline)
        t0: float | None = None,  # zero of the timelines: when the request was sent
        declarations: Iterable[Mapping[str, Any]] | None = None,  # the request's tools list
    ) -> None:
        self.tools = tool_specs(tools, declarations)
        self.timeout_s = timeout_s
        self.t0 = time.monotonic() if t0 is None else t0
        self._streams: dict[int, _CallStream] = {}
        self._content: list[str] = []
        self._finish_reason: str | None = None

    def feed(self, chunk: Any) -> None:
        """Take one ``ChatCompletionChunk`` (choice 0; ``n=1`` is assumed)."""
        now = time.monotonic()
        for choice in getattr(chunk, "choices", None) or []:
            if choice.index != 0:
                continue
            delta = choice.delta
            if delta is not None and delta.content:
                self._content.append(delta.content)
            for piece in (delta.tool_calls if delta is not None else None) or []:
                self._feed_call(piece, now)
            if choice.finish_reason:
                self._finish_reason = choice.finish_reason
        if any(stream.held is not None for stream in self._streams.values()):
            self._let_through()

    @property
    def abort_reason(self) -> str | None:
        """Why a tool asked to stop decoding (e.g. an invalid field), or None. A call whose
        arguments are complete can still abort: its last field is checked after it ended."""
        for stream in self._ordered():
            if stream.driver is not None and stream.not_run is None:
                reason = stream.driver.abort_reason
                if reason is not None:
                    return reason
        return None

    def finish(self, timeout_s: float | None = None, aborted: str | None = None) -> ToolCalls:
        """The stream ended: end every call's input and wait (one deadline) for the results.

        Calls end in order: one that may still abort is waited for before the next is given
        its input, and the calls after one that aborted never run (``ToolCalls.aborted``
        says why, however late the abort came)."""
        now = time.monotonic()
        deadline = now + (self.timeout_s if timeout_s is None else timeout_s)
        reason = None
        for stream in self._ordered():
            stream.complete = True
            if reason is not None:
                self._skip(stream, reason)
                continue
            self._release(stream)
            self._end(stream, now, cut_short=aborted is not None)
            if self._verdict(stream) is _Verdict.PENDING and stream.driver is not None:
                stream.driver.wait(deadline)
            if self._verdict(stream) is _Verdict.ABORTED:
                reason = stream.driver.abort_reason if stream.driver is not None else None
        calls = []
        for stream in self._ordered():
            stream.call.arguments = "".join(stream.parts)
            stream.call.result = self._result(stream, deadline)
            calls.append(stream.call)
        content = "".join(self._content) or None
        return ToolCalls(calls, content, self._finish_reason, aborted or reason)

    def close(self) -> None:
        """Give up every call that has no result yet (its worker is ended)."""
        for stream in self._streams.values():
            if stream.driver is not None:
                stream.driver.cancel("the tool calls were given up")

    def _feed_call(self, piece: Any, now: float) -> None:
        stream = self._streams.get(piece.index)
        if stream is None:
            # A new call: the previous ones are complete, so their tools can finish now (a
            # function's baseline waits for the stream's end).
            for other in self._streams.values():
                other.complete = True
                if not _waits_for_stream_end(other.spec):
                    self._end(other, now)
            # It runs nothing while an earlier call may still abort the message.
            held: list[tuple[str, float]] | None = None if self._let_through() else []
            stream = _CallStream(ToolCall(index=piece.index), held=held)
            self._streams[piece.index] = stream
        call, function = stream.call, piece.function
        call.id = call.id or piece.id or ""
        if function is not None and function.name:
            call.name += function.name
        delta = (function.arguments if function is not None else None) or ""
        stream.parts.append(delta)
        if stream.driver is None and stream.spec is None and call.name in self.tools:
            self._start(stream)
            delta = "".join(stream.parts)  # whatever came before the name was known
        if not delta or stream.spec is None:
            return
        if stream.held is not None:
            stream.held.append((delta, now))
        elif stream.driver is not None and not stream.ended and stream.error is None:
            self._feed_arguments(stream, delta, now)

    def _ordered(self) -> list[_CallStream]:
        return sorted(self._streams.values(), key=lambda s: s.call.index)

    def _let_through(self) -> bool:
        """Give each held call its input once every call before it has cleared (its verdict
        in, not an abort); return whether all calls so far have cleared. Non-blocking: each
        chunk checks again."""
        for stream in self._ordered():
            if stream.held is not None:
                self._release(stream)
                if stream.complete and not _waits_for_stream_end(stream.spec):
                    self._end(stream, time.monotonic())
            if self._verdict(stream) is not _Verdict.OK:
                return False
        return True

    def _verdict(self, stream: _CallStream) -> _Verdict:
        driver = stream.driver
        if stream.not_run is not None:
            return _Verdict.ABORTED
        if driver is None or stream.spec is None or stream.error is not None:
            return _Verdict.OK  # no tool, or an error result: nothing to abort
        if driver.abort_reason is not None:
            return _Verdict.ABORTED
        if not stream.ended:
            return _Verdict.PENDING  # still fed (or held)
        if not _may_abort(driver, stream.spec) or driver.wait(until=0.0) is not None:
            return _Verdict.OK  # its result is in: an abort would have come before it
        return _Verdict.PENDING

    def _release(self, stream: _CallStream) -> None:
        """Give a held call the input that arrived while an earlier call might abort."""
        held, stream.held = stream.held, None
        for delta, at in held or []:
            if stream.driver is not None and not stream.ended and stream.error is None:
                self._feed_arguments(stream, delta, at)

    def _skip(self, stream: _CallStream, reason: str) -> None:
        stream.held = None
        stream.not_run = f"not run: an earlier tool call aborted the message ({reason})"
        if stream.driver is not None:
            stream.driver.cancel(stream.not_run)

    def _start(self, stream: _CallStream) -> None:
        spec = stream.spec = self.tools[stream.call.name]
        try:
            session: CallSession
            if spec.function is not None:
                session = FunctionSession(
                    spec.function, partial=spec.partial, t0=self.t0, result_timeout_s=self.timeout_s
                )
            else:
                assert spec.checked is not None  # noqa: S101 - a registered tool's spec
                session = ToolSession(
                    spec.checked,
                    partial=spec.partial,
                    t0=self.t0,
                    result_timeout_s=self.timeout_s,
                )
            stream.driver = CallDriver(session)
        # No worker (pool busy or shut down, a failed start) or a config that cannot travel:
        # this call's error result, while the other calls of the message still run.
        except (RuntimeError, OSError, ValueError) as e:
            stream.error = f"tool {spec.tool!r} could not start: {e}"
        stream.reader = JsonFieldStream(spec.argument) if spec.argument else None

    def _feed_arguments(self, stream: _CallStream, delta: str, now: float) -> None:
        assert stream.driver is not None  # noqa: S101 - the caller checked
        if stream.reader is None:
            stream.driver.feed(delta, now)
            return
        try:
            text = stream.reader.feed(delta)
        except FieldStreamError as e:
            self._fail(stream, str(e))
            return
        stream.driver.feed(text, now)
        if stream.reader.done:  # the string closed: the tool has its whole input
            stream.driver.end(now)
            stream.ended = True

    def _end(self, stream: _CallStream, now: float, cut_short: bool = False) -> None:
        if stream.ended or stream.driver is None or stream.error is not None:
            return
        if stream.held is not None:
            return  # ended when it is released
        stream.ended = True
        if stream.reader is not None and not cut_short:
            try:
                stream.reader.close()
            except FieldStreamError as e:
                self._fail(stream, str(e))
                return
        stream.driver.end(now)

    def _fail(self, stream: _CallStream, error: str) -> None:
        name = stream.call.name
        stream.error = f"tool call {name!r}: {error}"
        if stream.driver is not None:
            stream.driver.cancel(stream.error)

    def _result(self, stream: _CallStream, deadline: float) -> ToolResult | None:
        if stream.spec is None:
            return None
        if stream.not_run is not None:
            timeline = ToolTimeline(status="aborted", error=stream.not_run)
            timeline.result_ready_at = time.monotonic()
            return ToolResult(timeline, self.t0)
        if stream.error is not None or stream.driver is None:
            timeline = ToolTimeline(status="error", error=stream.error)
            timeline.result_ready_at = time.monotonic()
            return ToolResult(timeline, self.t0)
        return stream.driver.result(deadline)


def _may_abort(driver: CallDriver, spec: ToolSpec) -> bool:
    """Whether the worker may still ask to stop decoding after the input ended
    (``Tool.may_abort``; a parse error is known here, at once). A function never does."""
    if spec.checked is None:
        return False
    return spec.checked.tool.cls.may_abort(dict(spec.config or {}))


def _waits_for_stream_end(spec: ToolSpec | None) -> bool:
    """A function's sequential baseline starts when the whole message is in."""
    return spec is not None and spec.function is not None and not spec.partial


def run_tool_calls(
    stream: Iterable[Any],
    tools: ToolsArg,
    *,
    timeout_s: float = 30.0,
    t0: float | None = None,
    declarations: Iterable[Mapping[str, Any]] | None = None,
) -> ToolCalls:
    """Read a streamed chat completion to its end (or until a tool aborts it), running each
    tool call's arguments in its tool as they arrive; return the calls with their results.
    ``declarations``: the ``tools`` list the request sent (the functions' schemas)."""
    calls = PartialToolCalls(tools, timeout_s=timeout_s, t0=t0, declarations=declarations)
    aborted = None
    try:
        for chunk in stream:
            calls.feed(chunk)
            aborted = calls.abort_reason
            if aborted is not None:
                # Closing the response makes the server abort the generation: decoding the
                # rest of an invalid call would only cost time.
                close = getattr(stream, "close", None)
                if close is not None:
                    close()
                break
        return calls.finish(aborted=aborted)
    finally:
        calls.close()
