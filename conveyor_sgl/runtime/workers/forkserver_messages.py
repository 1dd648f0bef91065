"""The fork server's wire: one JSON line per message, each a typed struct.

The runtime asks for a worker (``ForkRequest``); the fork server answers once it forked one
(``Forked``) and whenever a worker it forked is reaped (``Exited``). Decoding is typed on
both ends, so a malformed line is a ``MessageError``, never a ``KeyError`` halfway through.
"""

from __future__ import annotations

import msgspec

from conveyor_sgl.runtime.workers.messages import MessageError


class ForkRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    id: int
    endpoint: str  # the runtime channel the worker connects to
    preload: tuple[str, ...] = ()  # "module:Class" of the tools to preload before the fork


class Forked(msgspec.Struct, frozen=True, tag="forked"):
    id: int
    pid: int
    preloaded: tuple[str, ...]  # every tool preloaded in the fork server so far


class Exited(msgspec.Struct, frozen=True, tag="exited"):
    pid: int
    code: int  # as Popen.returncode: -N for signal N


Reply = Forked | Exited

_encoder = msgspec.json.Encoder()
_requests = msgspec.json.Decoder(ForkRequest)
_replies = msgspec.json.Decoder(Reply)


def encode_line(message: ForkRequest | Reply) -> bytes:
    return _encoder.encode(message) + b"\n"


def decode_request(line: bytes) -> ForkRequest:
    try:
        return _requests.decode(line)
    except msgspec.DecodeError as e:
        raise MessageError(f"not a fork request: {e}") from None


def decode_reply(line: bytes) -> Reply:
    try:
        return _replies.decode(line)
    except msgspec.DecodeError as e:
        raise MessageError(f"not a fork server reply: {e}") from None
