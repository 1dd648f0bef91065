"""Server mode, client side: discovery, and one partial tool call that runs in the server.

A server launched with ``--tool-partial-execution`` answers ``GET /conveyor/info``; the
primitives ask once per backend and then send each ``partial_tool`` to
``POST /conveyor/partial_tool``, whose SSE stream carries the generation's events (as
``/generate`` streams them), then ``decode_end``, then the tool's result and timeline. The
parser, the session and the tool worker run in the server; this side only reads.

Behind sglang-router (no ``/conveyor/*`` there) both requests are carried on
``/v1/completions`` (``protocol.carried``), routed by the program's text like its other
requests, so they reach the server that holds its prefix.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Generator
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

import msgspec
import requests

from conveyor_sgl.errors import ConveyorError
from conveyor_sgl.primitives.endpoint import (
    CONNECT_TIMEOUT_S,
    READ_TIMEOUT_S,
    Endpoint,
    EndpointError,
    GenerateEvent,
    generate_event,
    sse_objects,
)
from conveyor_sgl.runtime.server.protocol import (
    CARRIER_PATH,
    ELAPSED_HEADER,
    INFO_PATH,
    PARTIAL_TOOL_PATH,
    TEXT_KEY,
    DecodeEnd,
    PartialToolRequest,
    ToolDone,
    carried,
    decode_event,
)
from conveyor_sgl.runtime.timeline import ToolResult, ToolTimeline
from conveyor_sgl.tools.registry import ResolvedTool

_INFO_ATTR = "_conveyor_server_info"
_CARRIED_ATTR = "_conveyor_carried"  # True: this endpoint reaches server mode via a router


class ServerModeUnavailable(ConveyorError, RuntimeError):
    """``mode="server"`` was asked for, but the server does not run the flag."""


def server_info(endpoint: Endpoint) -> dict[str, Any] | None:
    """The server's ``/conveyor/info`` (asked once per endpoint), or None without the flag."""
    if hasattr(endpoint, _INFO_ATTR):
        return getattr(endpoint, _INFO_ATTR)
    try:
        res = endpoint.session.get(endpoint.base_url + INFO_PATH, timeout=CONNECT_TIMEOUT_S)
    except requests.RequestException:
        return None  # not cached: the generation itself will report an unreachable server
    if res.status_code in (401, 403):  # a wrong or missing --api-key: not "no server mode"
        raise EndpointError(f"GET {INFO_PATH} returned {res.status_code}: {res.text[:200]}")
    info = res.json() if res.status_code == 200 else None
    if res.status_code == 404 and endpoint.behind_router():
        info = _carried_info(endpoint)
        setattr(endpoint, _CARRIED_ATTR, info is not None)
    setattr(endpoint, _INFO_ATTR, info)
    return info


def _carried_info(endpoint: Endpoint) -> dict[str, Any] | None:
    """``/conveyor/info`` of a server behind the router (the operator runs every server
    behind one router with the same flags), or None if it has no server mode."""
    try:
        body = carried(INFO_PATH, None, " ", endpoint.model_id())
        res = endpoint.session.post(
            endpoint.base_url + CARRIER_PATH, json=body, timeout=(CONNECT_TIMEOUT_S, 60)
        )
    except requests.RequestException:
        return None
    if res.status_code in (401, 403):
        raise EndpointError(f"POST {CARRIER_PATH} returned {res.status_code}: {res.text[:200]}")
    info = res.json() if res.status_code == 200 else None
    # A server without the plugin answers a one-token completion instead.
    return info if isinstance(info, dict) and info.get("name") == "conveyor_sgl" else None


def choose_mode(requested: str | None, endpoint: Endpoint) -> str:
    """``None`` picks server mode where the server has it; ``"client"`` always works."""
    if requested == "client":
        return "client"
    if server_info(endpoint) is not None:
        return "server"
    if requested == "server":
        raise ServerModeUnavailable(
            f"partial_tool(mode='server') needs a server launched with "
            f"`python -m conveyor_sgl.launch_server --tool-partial-execution`; "
            f"{endpoint.base_url} has no {INFO_PATH}"
        )
    return "client"


class ServerToolCall:
    """One ``POST /conveyor/partial_tool``: read ``generation()`` to the end of decoding,
    then ``finish(timeout)`` for the tool's result (its timeline counts from our send)."""

    def __init__(
        self, endpoint: Endpoint, body: dict[str, Any], tool: str, routing_text: str = ""
    ) -> None:
        self.tool = tool  # as the program named it: messages read as in client mode
        self.sent_at = time.monotonic()  # the zero of the timeline this side reports
        self.abort_reason: str | None = None
        self._decoded_at: float | None = None  # when decode_end came, on this side's clock
        if getattr(endpoint, _CARRIED_ATTR, False):  # through sglang-router
            outer = carried(PARTIAL_TOOL_PATH, body, routing_text, endpoint.model_id())
            self._response = endpoint.post(CARRIER_PATH, outer, stream=True)
        else:
            self._response = endpoint.post(PARTIAL_TOOL_PATH, body, stream=True)
        # Taken now, while the response still owns its connection: close() shuts it down.
        # Dropped once the stream was read to its end: the pooled connection may then
        # carry the program's next request, which close() must never touch.
        self._socket = _socket_of(self._response)
        self._socket_lock = threading.Lock()
        self._reader: threading.Thread | None = None
        # The server's times count from its receipt of the request: half the round trip
        # (without the server's own time before it answered) after our send.
        elapsed = float(self._response.headers.get(ELAPSED_HEADER, 0.0))
        self.offset = max(0.0, time.monotonic() - self.sent_at - elapsed) / 2
        self._objects = sse_objects(self._response)
        self._result: Future[ToolDone] = Future()

    def generation(self) -> Generator[tuple[GenerateEvent, str], None, None]:
        """The generation's events, each with the new text to show (``TEXT_KEY``: the server
        parses the stream and holds back its stop strings; this side holds back nothing)."""
        for obj in self._objects:
            event = decode_event(obj)
            if event is None:
                yield generate_event(obj), obj[TEXT_KEY]
                continue
            if not isinstance(event, DecodeEnd):
                raise EndpointError(f"the server sent {event!r} before decoding ended")
            self._decoded_at = time.monotonic()
            self.abort_reason = event.abort_reason
            self._start_result_reader()
            return
        raise EndpointError("the server ended the partial tool stream before decoding ended")

    def finish(self, timeout_s: float) -> ToolResult:
        """The tool's result, its times in seconds since this call's request was sent."""
        try:
            done = self._result.result(timeout=timeout_s)
        except FutureTimeout:
            self.close()  # the server cancels the tool as soon as the connection drops
            error = f"tool {self.tool!r} returned no result within {timeout_s:.3g}s"
            return self._lost(error, "timeout")
        except EndpointError as e:
            return self._lost(f"tool {self.tool!r}: {e}", "error")
        # Its times count from the server's receipt, ``offset`` after our send.
        timeline = msgspec.convert(done.tool, ToolTimeline, from_attributes=True)
        return ToolResult(timeline, -self.offset)

    def close(self) -> None:
        """Drop the connection now, from any thread: the server sees the disconnect at once
        and cancels the tool (idempotent). Closing the response alone would neither wake a
        thread blocked reading it nor tell the server: shut the socket down (both ways)."""
        with self._socket_lock:
            sock, self._socket = self._socket, None
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # already closed or shut down
        if self._reader is None:
            self._response.close()  # nobody else reads it: close it here
        # else: the reader thread, woken by the shutdown, closes it in its finally.

    def _lost(self, error: str, status: str) -> ToolResult:
        """No result came from the server: the timeline this side knows, as client mode's."""
        timeline = ToolTimeline(mode="server", status=status, error=error)
        timeline.decode_finished_at = self._decoded_at
        timeline.result_ready_at = time.monotonic()
        return ToolResult(timeline, self.sent_at)

    def _start_result_reader(self) -> None:
        # The program goes on (fills, other gens) while the tool finishes: read the result
        # on a thread so tool_result can wait with its own deadline.
        self._reader = threading.Thread(
            target=self._read_result, name="conveyor-result", daemon=True
        )
        self._reader.start()

    def _read_result(self) -> None:
        tool: ToolDone | None = None
        error: EndpointError | None = None
        try:
            for obj in self._objects:  # to the end: the connection is done with when we answer
                if isinstance(event := decode_event(obj), ToolDone):
                    tool = event
        except Exception as e:  # noqa: BLE001 - handed to the waiting tool_result as data
            error = e if isinstance(e, EndpointError) else EndpointError(str(e))
        finally:
            with self._socket_lock:
                self._socket = None
            # Before the program goes on: its next request may take this pooled connection.
            self._response.close()
        if tool is not None:
            self._result.set_result(tool)
        else:
            self._result.set_exception(
                error or EndpointError("the server closed the stream without the tool result")
            )


def _socket_of(response: requests.Response) -> socket.socket | None:
    """The TCP socket under a streamed response (urllib3 2: its connection's ``sock``)."""
    connection = getattr(response.raw, "connection", None)
    sock = getattr(connection, "sock", None)
    return sock if isinstance(sock, socket.socket) else None


def wire_tool(resolved: ResolvedTool, info: dict[str, Any] | None) -> str:
    """What names the tool in a request: its registered name where the server knows that
    name, else its ``"module:Class"`` target (a tool registered only in this program)."""
    if resolved.registered and resolved.name in (info or {}).get("tools", ()):
        return resolved.name
    return resolved.target


def request_body(
    tool_name: str, partial: bool, config: dict[str, Any], generate: dict[str, Any]
) -> dict[str, Any]:
    """``tool_name``: from ``wire_tool``; the server resolves it under its own policy."""
    # The server waits for the result at most as long as this side reads a stream.
    request = PartialToolRequest(tool_name, generate, partial, config, READ_TIMEOUT_S)
    return request.to_body()
