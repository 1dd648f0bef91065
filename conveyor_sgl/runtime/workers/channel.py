"""A tiny typed wrapper over one ZeroMQ socket: ``send`` / ``recv`` / ``close``.

One channel connects the runtime to one tool worker. Both ends are DEALER sockets (async
request/stream in both directions, one peer); the runtime binds, the worker connects.
Endpoints are ``ipc://`` paths in a private temporary directory (mode 0700): only this user
can connect (a ``tcp://127.0.0.1`` port is open to every local user, and the worker runs
model-written code), nothing to allocate, and no port exhaustion under many sessions.

A ZeroMQ socket must be used by one thread at a time; a channel is handed between threads
only through a lock (the pool), which gives the memory barrier ZeroMQ requires.
"""

from __future__ import annotations

import time

import msgspec
import zmq

from conveyor_sgl.errors import ConveyorError
from conveyor_sgl.runtime.workers.messages import (
    Envelope,
    MessageError,
    decode,
    encode,
    undecodable,
)


class ChannelError(ConveyorError, RuntimeError):
    """The peer did not take a message before the deadline (it is gone or stuck)."""


class Channel:
    def __init__(self, endpoint: str, *, bind: bool, context: zmq.Context | None = None) -> None:
        self.endpoint = endpoint
        self._socket = (context or zmq.Context.instance()).socket(zmq.DEALER)
        # Never block process exit on unsent frames; never drop a unit for a slow tool.
        self._socket.setsockopt(zmq.LINGER, 0)
        self._socket.setsockopt(zmq.SNDHWM, 0)
        self._socket.setsockopt(zmq.RCVHWM, 0)
        if bind:
            self._socket.bind(endpoint)
        else:
            self._socket.connect(endpoint)
        self._seq = 0
        self.closed = False

    @property
    def socket(self) -> zmq.Socket:
        """The ZeroMQ socket, for a poller that waits on it beside other descriptors."""
        return self._socket

    def send(self, envelope: Envelope, timeout_s: float = 5.0) -> None:
        """Queue one envelope; raise ChannelError if the peer cannot take it in time."""
        self._seq += 1
        frame = encode(msgspec.structs.replace(envelope, seq=self._seq))
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                self._socket.send(frame, zmq.NOBLOCK)
                return
            except zmq.Again:
                pass
            remaining = deadline - time.monotonic()
            # A bound DEALER with no connected peer is "mute": the worker is gone.
            if remaining <= 0 or not self._socket.poll(_ms(remaining), zmq.POLLOUT):
                raise ChannelError(f"peer at {self.endpoint} took no message in {timeout_s:g}s")

    def recv(self, timeout_s: float) -> Envelope | None:
        """The next envelope, or None at the deadline. Garbage becomes an Error envelope."""
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                frames = self._socket.recv_multipart(zmq.NOBLOCK)
                return _decode_frames(frames)
            except zmq.Again:
                pass
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not self._socket.poll(_ms(remaining), zmq.POLLIN):
                return None

    def close(self, linger_s: float = 0.0) -> None:
        if not self.closed:
            self.closed = True
            self._socket.close(linger=_ms(linger_s))


def _decode_frames(frames: list[bytes]) -> Envelope:
    if len(frames) != 1:
        return undecodable(f"not a conveyor message: {len(frames)} frames, expected 1")
    try:
        return decode(frames[0])
    except MessageError as e:
        return undecodable(str(e))


def _ms(seconds: float) -> int:
    # Round up so that a tiny positive remainder still waits instead of spinning.
    return max(0, int(seconds * 1000 + 0.999))
