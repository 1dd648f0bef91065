"""The wire contract of server mode, in one place: the client (``primitives/server_mode``)
and the server (``routes``, ``tool_run``, ``plugin``) both import it, and nothing else of
each other.

``POST PARTIAL_TOOL_PATH`` with a ``PartialToolRequest`` body answers an SSE stream: the
generation's events as ``/generate`` streams them (each ``meta_info`` stamped with
``SERVER_TIME_KEY``; ``TEXT_KEY`` holds the new text to show: the server parses the stream,
so it alone holds back stop strings), then ``DecodeEnd``, then ``ToolDone`` with the tool's
``Timeline`` (times in seconds since the server received the request; ``ELAPSED_HEADER``
says how long it had the request before answering), then ``SSE_DONE``. Our events are the
structs below, tagged by ``EVENT_KEY``: ``sse_event`` encodes one, ``decode_event`` reads
one back by type. ``GET INFO_PATH`` says the server runs the flag, and what it allows
(``policy``, with the operator's caps: ``max_session_s``, which ``result_timeout`` may not
pass, ``max_sessions_per_client`` and ``max_body_bytes``).

Through sglang-router, which forwards only SGLang's own routes (``/conveyor/*`` is a 404
there), the same two requests ride on ``POST CARRIER_PATH`` (``/v1/completions``, whose
unknown fields the router keeps): ``carried(route, body, routing_text)`` wraps one, and the
server's ``carrier`` middleware unwraps it before SGLang's OpenAI handler sees it. The
router picks the server from ``prompt`` (cache-aware: the program's text), so a program's
generations and its tool calls land where its prefix is cached.

Light to import (the stdlib and msgspec, which SGLang depends on too): every SGLang process
imports the plugin, which imports this.
"""

from __future__ import annotations

from typing import Annotated, Any, TypeVar

import msgspec

INFO_PATH = "/conveyor/info"
PARTIAL_TOOL_PATH = "/conveyor/partial_tool"
ELAPSED_HEADER = "x-conveyor-server-elapsed"  # server seconds from receipt to response start
SERVER_TIME_KEY = "conveyor_server_time"  # in meta_info: when the HTTP process had the token
TEXT_KEY = "conveyor_text"  # in each generation event: the new text, stop strings held back
EVENT_KEY = "conveyor"  # an SSE object with this key is ours, not the generation's
DECODE_END = "decode_end"
RESULT = "result"
SSE_DONE = b"data: [DONE]\n\n"
DEFAULT_RESULT_TIMEOUT_S = 120.0  # the same default as tool_result() in client mode
CARRIER_PATH = "/v1/completions"
CARRIER_KEY = "conveyor"  # {"route": one of CARRIED_ROUTES, "body": that route's body}
CARRIED_ROUTES = (INFO_PATH, PARTIAL_TOOL_PATH)
# Prefix holds (``prefix_holds.py``): a kv_hints action on /generate, a release route, and
# the scheduler's state under this key in /server_info's ``internal_states``.
PREFIX_HOLD_ACTION = "conveyor_sgl.prefix_hold"
PREFIX_HOLD_VERSION = "1"
PREFIX_HOLD_RELEASE_PATH = "/conveyor/prefix_hold/release"
PREFIX_HOLD_STATE_KEY = "conveyor_prefix_holds"
MAX_HOLD_KEY_CHARS = 64
MAX_HOLD_RELEASES = 16


T = TypeVar("T")


class WireError(ValueError):
    """A body that is not what the wire says (the server answers 400 with this message)."""


class PartialToolRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The body of ``POST /conveyor/partial_tool``; the server's policy decides what of it
    may be used (``admission.py``). ``decode_request`` is the one decoder of it."""

    # A registered name, or a "module:Class" target where the policy allows them.
    tool: Annotated[str, msgspec.Meta(min_length=1)]
    generate: dict[str, Any]  # a /generate body (text or input_ids, sampling_params, ...)
    partial: bool = True
    config: dict[str, Any] = {}
    result_timeout: Annotated[float, msgspec.Meta(gt=0)] = DEFAULT_RESULT_TIMEOUT_S
    limits: dict[str, Any] | None = None  # may only tighten the tool's own limits

    def to_body(self) -> dict[str, Any]:
        """The JSON body the client sends (``limits`` only when it tightens something)."""
        body = msgspec.to_builtins(self)
        if body["limits"] is None:
            del body["limits"]
        return body


_request_decoder = msgspec.json.Decoder(PartialToolRequest)


def decode_request(body: bytes) -> PartialToolRequest:
    """The request in ``body`` (JSON bytes), or a ``WireError`` naming what is wrong."""
    return _decoded(_request_decoder, body)


def _decoded(decoder: msgspec.json.Decoder[T], body: bytes) -> T:
    try:
        return decoder.decode(body)
    except msgspec.DecodeError as e:
        raise WireError(str(e)) from None


class UnitTimes(msgspec.Struct, frozen=True):
    """One unit of the tool's input, as ``UnitTiming`` (None: it did not happen)."""

    text: str
    decoded_at: float | None = None
    sent_at: float | None = None
    started_at: float | None = None
    finished_at: float | None = None
    after: list[int] | None = None


class Timeline(msgspec.Struct, frozen=True):
    """The tool's result and timeline, as ``ToolTimeline`` with times since the receipt."""

    mode: str
    units: list[UnitTimes]
    decode_finished_at: float | None
    result_ready_at: float | None
    status: str | None
    output: str
    error: str | None
    sandbox: list[str] | None


class DecodeEnd(msgspec.Struct, frozen=True, tag_field=EVENT_KEY, tag=DECODE_END):
    """Decoding is over; ``abort_reason``: why it was stopped early (None: it ended)."""

    abort_reason: str | None = None


class ToolDone(msgspec.Struct, frozen=True, tag_field=EVENT_KEY, tag=RESULT):
    tool: Timeline


Event = DecodeEnd | ToolDone


def sse_event(event: Event) -> bytes:
    """One of our events as an SSE frame."""
    return b"data: " + msgspec.json.encode(event) + b"\n\n"


def decode_event(obj: dict[str, Any]) -> Event | None:
    """Our event in one SSE object (JSON-decoded), None for a generation event, or a
    ``WireError``."""
    if EVENT_KEY not in obj:
        return None
    try:
        return msgspec.convert(obj, Event)
    except msgspec.ValidationError as e:
        raise WireError(f"a malformed server event: {e}") from None


HoldKey = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_HOLD_KEY_CHARS)]


class PrefixHold(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """What one ``/generate`` asks of the server's prefix holds (a kv_hints action's payload):
    ``hold``: keep this request's tokens cached under this key after it finishes (its tool
    runs now; the program comes back with the result appended); ``release``: the holds this
    request continues, given up when it finishes; ``hold_s``: the longest to keep it (the
    server's own cap bounds it)."""

    hold: HoldKey | None = None
    release: Annotated[list[HoldKey], msgspec.Meta(max_length=MAX_HOLD_RELEASES)] = []
    hold_s: Annotated[float, msgspec.Meta(gt=0)] | None = None


class PrefixHoldRelease(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The body of ``POST PREFIX_HOLD_RELEASE_PATH``: give these holds up now."""

    keys: Annotated[list[HoldKey], msgspec.Meta(min_length=1, max_length=MAX_HOLD_RELEASES)]


_release_decoder = msgspec.json.Decoder(PrefixHoldRelease)


def decode_release(body: bytes) -> PrefixHoldRelease:
    return _decoded(_release_decoder, body)


def prefix_hold_hints(hint: PrefixHold) -> dict[str, Any]:
    """The ``kv_hints`` envelope of a /generate body that carries ``hint``."""
    return {
        "protocol_version": "1",
        "message_id": hint.hold or (hint.release[0] if hint.release else "-"),
        "actions": [
            {
                "action_id": "prefix_hold",
                "action_type": PREFIX_HOLD_ACTION,
                "action_version": PREFIX_HOLD_VERSION,
                "payload": msgspec.to_builtins(hint),
            }
        ],
    }


def prefix_hold_of(envelope: Any) -> PrefixHold | None:
    """Our action in a request's kv_hints (SGLang's typed envelope or its JSON), or None:
    absent, another action or version, or malformed (a hint never fails a request)."""
    actions = getattr(envelope, "actions", None)
    if actions is None and isinstance(envelope, dict):
        actions = envelope.get("actions")
    for action in actions or ():
        fields = action if isinstance(action, dict) else msgspec.structs.asdict(action)
        if (fields.get("action_type"), fields.get("action_version")) == (
            PREFIX_HOLD_ACTION,
            PREFIX_HOLD_VERSION,
        ):
            try:
                return msgspec.convert(fields.get("payload"), PrefixHold)
            except msgspec.ValidationError:
                return None
    return None


def carried(
    route: str, body: dict[str, Any] | None, routing_text: str, model: str
) -> dict[str, Any]:
    """The ``CARRIER_PATH`` body that carries ``route``'s request through a router.
    ``routing_text`` is the prompt the router routes by; ``max_tokens`` keeps a server
    without the plugin (which would run it as a completion) to one token."""
    if route not in CARRIED_ROUTES:
        raise ValueError(f"{route!r} cannot be carried; carried routes: {CARRIED_ROUTES}")
    return {
        # First: a server that caps carried bodies (--tool-max-body-bytes) knows the body is
        # ours from its first bytes, so an oversized one is refused before it is read.
        CARRIER_KEY: {"route": route, "body": body},
        "model": model,
        "prompt": routing_text or " ",
        "max_tokens": 1,
        "stream": route == PARTIAL_TOOL_PATH,
    }
