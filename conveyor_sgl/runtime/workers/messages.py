"""Messages between the runtime and tool workers: one envelope, one codec.

Every frame on a worker channel is an ``Envelope(session, payload, seq)`` encoded with
msgpack. The payload is one of the small structs below; its ``kind`` tag travels inside the
encoded payload, so the receiver needs no out-of-band type information. Errors travel as
data (``Result.status``/``Result.error``, ``Error.message``), never as pickled exceptions.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

import msgspec

from conveyor_sgl.errors import ConveyorError
from conveyor_sgl.tools.base import Status
from conveyor_sgl.tools.limits import Limits


class Kind(StrEnum):
    # runtime -> worker
    START = "start"
    FEED = "feed"
    FINISH = "finish"
    CANCEL = "cancel"
    SHUTDOWN = "shutdown"
    # worker -> runtime
    READY = "ready"
    UNIT_DONE = "unit_done"
    ABORT = "abort"
    RESULT = "result"
    ERROR = "error"
    # executor -> its worker only (never forwarded)
    CONFINED = "confined"


class _Payload(msgspec.Struct, frozen=True, tag_field="kind"):
    pass


class Start(_Payload, frozen=True, tag=Kind.START.value):
    target: str  # "module:Class" of the tool
    config: dict[str, Any] = {}
    limits: Limits = Limits()


class Feed(_Payload, frozen=True, tag=Kind.FEED.value):
    index: int
    text: str
    start: int
    end: int
    data: dict[str, Any] = {}


class Finish(_Payload, frozen=True, tag=Kind.FINISH.value):
    pass


class Cancel(_Payload, frozen=True, tag=Kind.CANCEL.value):
    reason: str = ""


class Shutdown(_Payload, frozen=True, tag=Kind.SHUTDOWN.value):
    pass


class Ready(_Payload, frozen=True, tag=Kind.READY.value):
    pid: int


class UnitDone(_Payload, frozen=True, tag=Kind.UNIT_DONE.value):
    index: int
    started_at: float  # time.monotonic() in the worker: one system-wide clock on Linux
    finished_at: float
    after: list[int] | None = None  # units (indices) it waited for; None: the previous one


class AbortDecoding(_Payload, frozen=True, tag=Kind.ABORT.value):
    reason: str


class Result(_Payload, frozen=True, tag=Kind.RESULT.value):
    status: Status
    output: str = ""
    error: str | None = None
    sandbox: list[str] | None = None  # the confinement layers in force; None: not entered


class Error(_Payload, frozen=True, tag=Kind.ERROR.value):
    message: str


class Confined(_Payload, frozen=True, tag=Kind.CONFINED.value):
    """The executor's first word after ``Start``, before any tool code ran: the kernel layers
    it entered. Its worker records them for the session's result (the tool cannot rewrite
    them later) and forwards nothing of it."""

    layers: list[str]


Payload = (
    Start
    | Feed
    | Finish
    | Cancel
    | Shutdown
    | Ready
    | UnitDone
    | AbortDecoding
    | Result
    | Error
    | Confined
)


class Envelope(msgspec.Struct, frozen=True):
    """The one frame type. ``seq`` is stamped by the sending channel (per-channel order)."""

    session: str
    payload: Payload
    seq: int = 0

    @property
    def kind(self) -> Kind:
        return Kind(str(type(self.payload).__struct_config__.tag))  # every tag is a Kind value


class MessageError(ConveyorError, ValueError):
    """A frame that is not a conveyor message (or a payload that cannot be encoded)."""


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(Envelope)


def encode(envelope: Envelope) -> bytes:
    try:
        return _encoder.encode(envelope)
    except (TypeError, ValueError, OverflowError) as e:
        raise MessageError(f"cannot encode {envelope.kind.value} message: {e}") from None


def decode(frame: bytes) -> Envelope:
    try:
        return _decoder.decode(frame)
    except msgspec.DecodeError as e:
        raise MessageError(f"not a conveyor message ({len(frame)} bytes): {e}") from None


def undecodable(reason: str) -> Envelope:
    """What a receiver gets instead of a frame it cannot read: an error, not a crash."""
    return Envelope(session="", payload=Error(message=reason), seq=-1)


def describe_error(exc: BaseException) -> str:
    """The one textual form of an exception that crosses a process boundary."""
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
