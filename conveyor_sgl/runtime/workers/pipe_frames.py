"""Envelopes over a pipe between a worker and its session executor: length-prefixed frames.

The executor runs model-written code, so what it writes is hostile: a frame larger than
``max_bytes`` or one that does not decode is an error the reader raises, and the worker ends
the executor. The worker's side never blocks on the executor (``FrameWriter`` buffers and
writes what the pipe takes); the executor's side simply blocks (it has nothing else to do).
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator

from conveyor_sgl.errors import ConveyorError
from conveyor_sgl.runtime.workers.messages import Envelope, MessageError, decode, encode

_HEADER = struct.Struct(">I")
MAX_FRAME_BYTES = 8 << 20  # one message from an executor; its output cap is 1 MiB by default


class FrameError(ConveyorError, RuntimeError):
    """The executor broke the pipe protocol (a frame too large, or not a message)."""


class FrameReader:
    """Splits bytes read from a pipe into envelopes, refusing oversized or garbled frames."""

    def __init__(self, max_bytes: int = MAX_FRAME_BYTES) -> None:
        self.max_bytes = max_bytes
        self._buffer = bytearray()

    def push(self, data: bytes) -> list[Envelope]:
        self._buffer += data
        out = []
        while len(self._buffer) >= _HEADER.size:
            (size,) = _HEADER.unpack_from(self._buffer)
            if size > self.max_bytes:
                raise FrameError(f"a message of {size} bytes (the cap is {self.max_bytes})")
            if len(self._buffer) < _HEADER.size + size:
                break
            frame = bytes(self._buffer[_HEADER.size : _HEADER.size + size])
            del self._buffer[: _HEADER.size + size]
            try:
                out.append(decode(frame))
            except MessageError as e:
                raise FrameError(str(e)) from None
        return out


def frame(envelope: Envelope) -> bytes:
    data = encode(envelope)
    return _HEADER.pack(len(data)) + data


class FrameWriter:
    """Frames queued for a non-blocking pipe; ``flush`` writes what the pipe takes now."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        os.set_blocking(fd, False)
        self._pending = bytearray()

    @property
    def pending(self) -> bool:
        return bool(self._pending)

    def queue(self, envelope: Envelope) -> None:
        self._pending += frame(envelope)

    def flush(self) -> None:
        """Write what the pipe takes; raises BrokenPipeError once the reader is gone."""
        while self._pending:
            try:
                written = os.write(self.fd, self._pending)
            except BlockingIOError:
                return
            del self._pending[:written]


def envelopes_from(fd: int, reader: FrameReader) -> Iterator[Envelope]:
    """Blocking: the envelopes read from ``fd`` (the executor's side), until end of file."""
    while data := os.read(fd, 1 << 16):
        yield from reader.push(data)


def write_all(fd: int, envelope: Envelope) -> None:
    """Blocking: write one framed envelope (the executor's side)."""
    data = memoryview(frame(envelope))
    while data:
        data = data[os.write(fd, data) :]
