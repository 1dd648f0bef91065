"""Running the primitives inside SGLang's ``StreamExecutor`` (client mode).

``partial_tool`` streams its generation from the server whatever the program's ``stream``
flag, feeds each text delta to a tool session (parser -> ZeroMQ -> tool worker), and keeps
the exact token ids. ``tool_result`` waits for the tool, appends its output and records the
timeline. Generations that follow send token ids, so the server reuses the whole prefix.
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Generator, Iterable
from contextlib import closing
from dataclasses import dataclass
from typing import Any, Protocol

from sglang.lang.ir import SglGen

from conveyor_sgl.parsers.stop_text import StopHoldback
from conveyor_sgl.primitives import prefix_hold
from conveyor_sgl.primitives.endpoint import Endpoint, EndpointError, GenerateEvent, build_payload
from conveyor_sgl.primitives.ir import ProgramError, SglPartialTool, SglToolResult, tool_event_key
from conveyor_sgl.primitives.server_mode import (
    ServerToolCall,
    choose_mode,
    request_body,
    server_info,
    wire_tool,
)
from conveyor_sgl.primitives.token_ledger import (
    get_ledger,
    ledger_after,
    set_ledger,
    visible_text,
)
from conveyor_sgl.runtime.function_call import FunctionSession
from conveyor_sgl.runtime.session import ToolSession
from conveyor_sgl.runtime.timeline import ToolResult, appended_text
from conveyor_sgl.runtime.tool_call import CallDriver, CallSession

DEFAULT_RESULT_TIMEOUT_S = 120.0
# A generation's events, each with the new text it shows (stop strings held back).
Shown = Generator[tuple[GenerateEvent, str], None, None]
_PENDING_ATTR = "_conveyor_pending_tools"


class Pending(Protocol):
    """A partial tool whose decoding ended: ``finish`` gives its result, its timeline's zero
    the moment the generation's request was sent (``to_dict()`` is ``meta_info["tool"]``)."""

    def finish(self, timeout_s: float) -> ToolResult: ...

    def close(self) -> None:
        """Cancel the tool if it is still running (idempotent)."""


@dataclass
class PendingTool:
    call: CallDriver
    sent_at: float  # monotonic time the generation's request was sent: the timeline's zero

    def finish(self, timeout_s: float) -> ToolResult:
        result = self.call.result(time.monotonic() + timeout_s)
        return ToolResult(result.timeline, self.sent_at)

    def close(self) -> None:
        self.call.cancel("the program ended without taking the tool's result")


def execute_partial_tool(s: Any, expr: SglPartialTool) -> None:
    endpoint = Endpoint.of_backend(s.backend)
    session: CallSession
    if expr.function is not None:  # a callable or an MCP tool: called when its JSON closes
        session = FunctionSession(expr.function, partial=expr.partial, mode="client")
    elif choose_mode(expr.mode, endpoint) == "server":
        return _execute_partial_tool_in_server(s, expr, endpoint)
    else:
        assert expr.checked is not None  # noqa: S101 - a registered tool
        session = ToolSession(expr.checked, partial=expr.partial, mode="client")
    # If the program never reaches tool_result, the worker still ends with the program.
    weakref.finalize(s, session.cancel)
    prompt_text = s.text_
    payload = _payload(s, expr, endpoint)
    held = prefix_hold.ask(s, payload, hold=True)  # kept cached while the tool runs
    call = CallDriver(session, _stops(payload))  # this side parses: it holds back stops
    sent_at = time.monotonic()
    try:
        events = endpoint.generate_stream(payload)
        final = _stream_generation(s, expr.name, _fed(call, events, endpoint))
    except BaseException:
        session.cancel()
        raise
    call.end()
    _after_generation(s, expr.name, final, held, tool_call=True)
    set_ledger(s, ledger_after(prompt_text, final, payload))
    _pending(s)[expr.name] = PendingTool(call, sent_at)


def _execute_partial_tool_in_server(s: Any, expr: SglPartialTool, endpoint: Endpoint) -> None:
    """The parser and the tool session run in the server; this side streams the text."""
    prompt_text = s.text_
    generate = _payload(s, expr, endpoint)
    held = prefix_hold.ask(s, generate, hold=True)  # the server gives it up if we go away
    # The server resolves the tool itself, under its own policy and limits.
    if expr.server_tool is not None:
        tool = expr.server_tool  # one of the MCP servers its operator named
    else:
        assert expr.resolved is not None  # noqa: S101 - a registered tool
        tool = wire_tool(expr.resolved, server_info(endpoint))
    body = request_body(tool, expr.partial, expr.config, generate)
    call = ServerToolCall(endpoint, body, tool=expr.tool, routing_text=prompt_text)
    weakref.finalize(s, call.close)
    try:
        # The server parsed the stream and held back its stop strings: its text is shown.
        final = _stream_generation(s, expr.name, call.generation())
    except BaseException:
        call.close()
        raise
    _after_generation(s, expr.name, final, held, tool_call=True)
    set_ledger(s, ledger_after(prompt_text, final, generate))
    _pending(s)[expr.name] = call


def execute_tool_result(s: Any, expr: SglToolResult) -> None:
    pending = _pending(s).pop(expr.name, None)
    if pending is None:
        # What program_check could not see before the run (after a read of the model's text).
        raise ProgramError(
            f"tool_result({expr.name!r}) has no partial_tool({expr.name!r}) before it "
            "in this program (or its result was already taken): add "
            f"s += partial_tool({expr.name!r}, tool=...) before it, and take each result once"
        )
    timeout = expr.timeout if expr.timeout is not None else DEFAULT_RESULT_TIMEOUT_S
    result = pending.finish(timeout)
    s._execute_fill(appended_text(result.status, result.output, result.error))
    meta = dict(s.meta_info.get(expr.name) or {})
    meta["tool"] = result.to_dict()
    s.meta_info[expr.name] = meta
    s.variable_event[tool_event_key(expr.name)].set()


def execute_gen_with_ids(s: Any, expr: SglGen) -> None:
    """A stock ``gen`` after a partial tool: same variables and meta as stock, but the prompt
    goes as token ids so the server reuses the whole prefix."""
    endpoint = Endpoint.of_backend(s.backend)
    prompt_text = s.text_
    payload = _payload(s, expr, endpoint)
    held = prefix_hold.ask(s, payload, hold=False)  # ends the holds it continues
    if s.stream:
        events = endpoint.generate_stream(payload)
        final = _stream_generation(s, expr.name, _held_back(events, _stops(payload)))
    else:
        final = endpoint.generate(payload)
        comp = visible_text(final)
        s.text_ += comp
        s.variables[expr.name] = comp
        s.meta_info[expr.name] = final.meta_info
        s.variable_event[expr.name].set()
    _after_generation(s, expr.name, final, held, tool_call=False)
    set_ledger(s, ledger_after(prompt_text, final, payload))


def _after_generation(
    s: Any, name: str, final: GenerateEvent, held: bool, *, tool_call: bool
) -> None:
    """Whether it found the program's prefix cached (after a tool call); a tool call's
    prompt is the prefix the next generation should find."""
    meta = s.meta_info.get(name)
    if isinstance(meta, dict):
        prefix_hold.report_reuse(s, meta, held)
    if tool_call:
        prefix_hold.note_tool_call(s, final.meta_info)


def _payload(s: Any, expr: SglGen, endpoint: Endpoint) -> dict[str, Any]:
    params = s._resolve_sampling_params(expr.sampling_params)
    ledger = get_ledger(s)
    prompt = ledger.prompt_for(s.text_, endpoint) if ledger else endpoint.prompt_of(s.text_)
    if "input_ids" in prompt and endpoint.behind_router():
        # The router routes by text (cache-aware); the server takes the ids and only logs it.
        prompt["text"] = s.text_
    payload = build_payload(s.backend, params, prompt)
    if "input_ids" not in prompt:
        s.backend._add_images(s, payload)
    return payload


def _stream_generation(s: Any, name: str, pieces: Shown) -> GenerateEvent:
    """Stream one generation into variable ``name``: each event with the new text it shows.
    The text never shows any part of a stop string (held back, by whichever side parses the
    stream, until it is known not to be one), so the variable ends as stock SGLang's trimmed
    text and a tool never parses a stop string."""
    s.variables[name] = ""
    if s.stream:
        s.stream_var_event[name].set()
    final: GenerateEvent | None = None
    try:
        for event, shown in pieces:
            final = event
            s.text_ += shown
            s.variables[name] += shown
            s.meta_info[name] = event.meta_info
            if s.stream:
                s.stream_var_event[name].set()
                s.stream_text_event.set()
    finally:
        pieces.close()
        s.variable_event[name].set()
        if s.stream:
            s.stream_var_event[name].set()
    if final is None:
        raise EndpointError(f"the server sent no output for generation {name!r}")
    return final


def _held_back(
    events: Generator[GenerateEvent, None, None], stops: str | Iterable[str] | None
) -> Shown:
    """A generation no tool reads: its text, stop strings held back."""
    holdback = StopHoldback(stops)
    with closing(events):
        for event in events:
            yield event, holdback.delta(event.text, event.meta_info, event.finished)


def _fed(
    call: CallDriver, events: Generator[GenerateEvent, None, None], endpoint: Endpoint
) -> Shown:
    """A generation a tool reads (``call.take``); stopped where the tool asks."""
    with closing(events):
        for event in events:
            yield event, call.take(event.text, event.meta_info, event.finished, None)
            if not event.finished and call.stopped:
                rid = event.meta_info.get("id")
                if rid:
                    endpoint.abort(rid)
                return


def _stops(payload: dict[str, Any]) -> str | list[str] | None:
    """The request's ``stop`` parameter as sent (``StopHoldback`` normalizes it)."""
    return payload.get("sampling_params", {}).get("stop")


def end_pending(s: Any) -> None:
    """The program is over (finished or failed): cancel every tool it never took the result
    of, now rather than when its state is garbage-collected."""
    pending = _pending(s)
    while pending:
        pending.popitem()[1].close()
    prefix_hold.release_open(s)


def _pending(s: Any) -> dict[str, Pending]:
    pending = getattr(s, _PENDING_ATTR, None)
    if pending is None:
        pending = {}
        setattr(s, _PENDING_ATTR, pending)
    return pending
