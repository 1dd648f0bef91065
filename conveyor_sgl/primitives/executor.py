"""Running the primitives inside SGLang's ``StreamExecutor`` (client mode).

``partial_tool`` streams its generation from the server whatever the program's ``stream``
flag, feeds each text delta to a tool session (parser -> ZeroMQ -> tool worker), and keeps
the exact token ids. ``tool_result`` waits for the tool, appends its output and records the
timeline. Generations that follow send token ids, so the server reuses the whole prefix.
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any, Protocol

from sglang.lang.ir import SglGen

from conveyor_sgl.parsers.stop_text import StopHoldback
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
from conveyor_sgl.runtime.session import ToolSession
from conveyor_sgl.runtime.timeline import appended_text

DEFAULT_RESULT_TIMEOUT_S = 120.0
_PENDING_ATTR = "_conveyor_pending_tools"


class Pending(Protocol):
    """A partial tool whose decoding ended: ``finish`` gives its ``meta_info["tool"]``."""

    def finish(self, timeout_s: float, name: str) -> dict[str, Any]: ...

    def close(self) -> None:
        """Cancel the tool if it is still running (idempotent)."""


@dataclass
class PendingTool:
    session: ToolSession
    sent_at: float  # monotonic time the generation's request was sent: the timeline's zero

    def finish(self, timeout_s: float, name: str) -> dict[str, Any]:
        return self.session.result(timeout_s=timeout_s).to_dict(self.sent_at)

    def close(self) -> None:
        self.session.cancel("the program ended without taking the tool's result")


def execute_partial_tool(s: Any, expr: SglPartialTool) -> None:
    endpoint = Endpoint.of_backend(s.backend)
    if choose_mode(expr.mode, endpoint) == "server":
        return _execute_partial_tool_in_server(s, expr, endpoint)
    session = ToolSession(expr.resolved, partial=expr.partial, config=expr.config, mode="client")
    # If the program never reaches tool_result, the worker still ends with the program.
    weakref.finalize(s, session.cancel)
    prompt_text = s.text_
    payload = _payload(s, expr, endpoint)
    sent_at = time.monotonic()
    try:
        final = _stream_generation(
            s,
            expr.name,
            endpoint.generate_stream(payload),
            _stops(payload),
            on_delta=session.feed_text,
            stop=lambda event: session.abort_reason is not None and _abort(endpoint, event),
        )
    except BaseException:
        session.cancel()
        raise
    session.end_input()
    set_ledger(s, ledger_after(prompt_text, final, payload))
    _pending(s)[expr.name] = PendingTool(session, sent_at)


def _execute_partial_tool_in_server(s: Any, expr: SglPartialTool, endpoint: Endpoint) -> None:
    """The parser and the tool session run in the server; this side streams the text."""
    prompt_text = s.text_
    generate = _payload(s, expr, endpoint)
    # The server resolves the tool itself, under its own policy and limits.
    tool = wire_tool(expr.resolved, server_info(endpoint))
    body = request_body(tool, expr.partial, expr.config, generate)
    call = ServerToolCall(endpoint, body, tool=expr.tool, routing_text=prompt_text)
    weakref.finalize(s, call.close)
    try:
        final = _stream_generation(s, expr.name, call.generation(), _stops(generate))
    except BaseException:
        call.close()
        raise
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
    tool = pending.finish(timeout, expr.name)
    s._execute_fill(appended_text(tool["status"], tool["output"], tool["error"]))
    meta = dict(s.meta_info.get(expr.name) or {})
    meta["tool"] = tool
    s.meta_info[expr.name] = meta
    s.variable_event[tool_event_key(expr.name)].set()


def execute_gen_with_ids(s: Any, expr: SglGen) -> None:
    """A stock ``gen`` after a partial tool: same variables and meta as stock, but the prompt
    goes as token ids so the server reuses the whole prefix."""
    endpoint = Endpoint.of_backend(s.backend)
    prompt_text = s.text_
    payload = _payload(s, expr, endpoint)
    if s.stream:
        final = _stream_generation(s, expr.name, endpoint.generate_stream(payload), _stops(payload))
    else:
        final = endpoint.generate(payload)
        comp = visible_text(final)
        s.text_ += comp
        s.variables[expr.name] = comp
        s.meta_info[expr.name] = final.meta_info
        s.variable_event[expr.name].set()
    set_ledger(s, ledger_after(prompt_text, final, payload))


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


def _stream_generation(
    s: Any,
    name: str,
    events: Generator[GenerateEvent, None, None],
    stops: str | list[str] | None,
    on_delta: Callable[[str], object] | None = None,
    stop: Callable[[GenerateEvent], bool] = lambda event: False,
) -> GenerateEvent:
    """Stream one generation into variable ``name`` and hand each new piece of text to
    ``on_delta``; ``stop(event)`` ends it early. The text never shows any part of a stop
    string (held back until it is known not to be one), so the variable ends as stock
    SGLang's trimmed text and a tool never parses a stop string."""
    s.variables[name] = ""
    if s.stream:
        s.stream_var_event[name].set()
    final: GenerateEvent | None = None
    holdback = StopHoldback(stops)
    try:
        for event in events:
            final = event
            delta = holdback.delta(event.text, event.meta_info, event.finished)
            if delta:
                if on_delta is not None:
                    on_delta(delta)
                s.text_ += delta
                s.variables[name] += delta
            s.meta_info[name] = event.meta_info
            if s.stream:
                s.stream_var_event[name].set()
                s.stream_text_event.set()
            if not event.finished and stop(event):
                # Stopped early, no stop string matched: what was held back is text too.
                rest = holdback.rest(event.text)
                s.text_ += rest
                s.variables[name] += rest
                break
    finally:
        events.close()
        s.variable_event[name].set()
        if s.stream:
            s.stream_var_event[name].set()
    if final is None:
        raise EndpointError(f"the server sent no output for generation {name!r}")
    return final


def _stops(payload: dict[str, Any]) -> str | list[str] | None:
    """The request's ``stop`` parameter as sent (``StopHoldback`` normalizes it)."""
    return payload.get("sampling_params", {}).get("stop")


def _abort(endpoint: Endpoint, event: GenerateEvent) -> bool:
    rid = event.meta_info.get("id")
    if rid:
        endpoint.abort(rid)
    return True


def end_pending(s: Any) -> None:
    """The program is over (finished or failed): cancel every tool it never took the result
    of, now rather than when its state is garbage-collected."""
    pending = _pending(s)
    while pending:
        pending.popitem()[1].close()


def _pending(s: Any) -> dict[str, Pending]:
    pending = getattr(s, _PENDING_ATTR, None)
    if pending is None:
        pending = {}
        setattr(s, _PENDING_ATTR, pending)
    return pending
