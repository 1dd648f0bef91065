"""The worker's half of a session: relay between the runtime's channel and the executor.

The worker is trusted and unconfined (it holds the ZeroMQ context, its I/O thread and the
parent-watch thread); the executor (``executor.py``) runs the tool, confined. Everything the
executor writes is hostile and checked here before anything reaches the runtime:
- only worker-to-runtime payloads, for the session that was started (the session is ours to
  stamp, not the executor's);
- the confinement layers come from the executor's first word after ``Start`` (``Confined``,
  sent before any tool code ran) and are stamped on the result; what a result says is ignored;
- a ``UnitDone`` only for a unit that was fed (at most twice: once when it ran, once with the
  tool's own account), ``after`` naming fed units; one ``AbortDecoding``; one result;
- a frame over ``MAX_FRAME_BYTES``, or ``MAX_SESSION_BYTES`` in all, ends the executor.
A violation kills the executor and ends the session with an error result.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from collections import Counter

import msgspec
import zmq

from conveyor_sgl.runtime.workers.channel import Channel
from conveyor_sgl.runtime.workers.executor import ExecutorProcess
from conveyor_sgl.runtime.workers.messages import (
    AbortDecoding,
    Confined,
    Envelope,
    Error,
    Feed,
    Payload,
    Result,
    Start,
    UnitDone,
)
from conveyor_sgl.runtime.workers.pipe_frames import FrameError, FrameReader, FrameWriter

MAX_SESSION_BYTES = 64 << 20  # all an executor may send in one session
MAX_LOG_BYTES = 64 << 10  # of its raw stdout/stderr, passed on to the worker's stderr
_POLL_MS = 1000
_EXIT_WAIT_S = 2.0  # for the executor to exit once its session is over


class ProtocolViolation(Exception):
    """The executor sent what it may not; the message says what."""


class Relay:
    def __init__(self, channel: Channel, executor: ExecutorProcess) -> None:
        self.channel = channel
        self.executor = executor
        self.session = ""
        self.layers: list[str] | None = None
        self.exit_status: int | None = None  # the executor's wait status, once reaped
        self._writer = FrameWriter(executor.to_executor)
        self._reader = FrameReader()
        self._received = 0
        self._logged = 0  # bytes of the executor's raw stdout/stderr seen
        self._started = False
        self._heard = False  # anything from the executor since Start
        self._fed: set[int] = set()
        self._reported: Counter[int] = Counter()
        self._aborted = False
        self._result_sent = False

    def serve(self) -> None:
        """Relay until the executor is gone (its session ended, or it died)."""
        poller = zmq.Poller()
        poller.register(self.channel.socket, zmq.POLLIN)
        poller.register(self.executor.from_executor, zmq.POLLIN)
        poller.register(self.executor.output, zmq.POLLIN)
        while self.exit_status is None:
            writing = self._writer.pending  # watch the pipe to the executor only then
            if writing:
                poller.register(self.executor.to_executor, zmq.POLLOUT)
            events = dict(poller.poll(_POLL_MS))
            if writing:
                poller.unregister(self.executor.to_executor)
            if events.get(self.executor.to_executor):
                self._flush()
            if events.get(self.channel.socket):
                self._from_runtime()
            if events.get(self.executor.output):
                self._pass_on_output(poller)
            if events.get(self.executor.from_executor):
                self._from_executor()

    @property
    def result_sent(self) -> bool:
        return self._result_sent

    def _pass_on_output(self, poller: zmq.Poller) -> None:
        """What the executor wrote to its stdout/stderr, up to ``MAX_LOG_BYTES``, then a note."""
        data = os.read(self.executor.output, 1 << 16)
        if not data:
            poller.unregister(self.executor.output)
            return
        room = MAX_LOG_BYTES - self._logged
        self._logged += len(data)
        if room > 0:
            sys.stderr.buffer.write(data[:room])
        if room < len(data) and room >= 0:  # the read that passed the cap: say so, once
            sys.stderr.buffer.write(b"\nconveyor worker: tool output to stderr truncated\n")
        sys.stderr.flush()

    def _from_runtime(self) -> None:
        while (envelope := self.channel.recv(timeout_s=0)) is not None:
            payload = envelope.payload
            if isinstance(payload, Error):
                print(f"conveyor worker: ignored {payload.message}", file=sys.stderr)
                continue
            if isinstance(payload, Start) and not self._started:
                self._started, self.session = True, envelope.session
            elif isinstance(payload, Feed) and envelope.session == self.session:
                self._fed.add(payload.index)
            self._writer.queue(envelope)  # a Shutdown too: the executor ends, then we do
            self._flush()

    def _flush(self) -> None:
        try:
            self._writer.flush()
        except BrokenPipeError:
            pass  # the executor is gone: its end of file says so

    def _from_executor(self) -> None:
        try:
            data = os.read(self.executor.from_executor, 1 << 16)
        except BlockingIOError:
            return
        if not data:
            self._reap()
            return
        self._received += len(data)
        try:
            if self._received > MAX_SESSION_BYTES:
                raise ProtocolViolation(f"sent over {MAX_SESSION_BYTES} bytes in one session")
            for envelope in self._reader.push(data):
                self._check_and_forward(envelope.payload)
        except (FrameError, ProtocolViolation) as e:
            self._violation(str(e))

    def _check_and_forward(self, payload: Payload) -> None:
        first, self._heard = not self._heard, True
        if isinstance(payload, Confined):
            if not first or not self._started:
                raise ProtocolViolation("a confinement report after tool code ran")
            self.layers = list(payload.layers)
            return
        if self._result_sent or not self._started:
            raise ProtocolViolation(f"{type(payload).__name__} outside a session")
        if isinstance(payload, UnitDone):
            self._check_unit(payload)
        elif isinstance(payload, AbortDecoding):
            if self._aborted:
                raise ProtocolViolation("a second abort")
            self._aborted = True
        elif isinstance(payload, Result):
            payload = msgspec.structs.replace(payload, sandbox=self.layers)
            self._result_sent = True
        elif not isinstance(payload, Error):
            raise ProtocolViolation(f"a {type(payload).__name__} message")
        self.channel.send(Envelope(session=self.session, payload=payload))

    def _check_unit(self, done: UnitDone) -> None:
        self._reported[done.index] += 1
        if done.index not in self._fed or self._reported[done.index] > 2:
            raise ProtocolViolation(f"a report of unit {done.index}, which was not fed")
        if done.after is not None and not set(done.after) <= self._fed:
            raise ProtocolViolation("a unit said to wait for units that were not fed")

    def _violation(self, what: str) -> None:
        self.executor.kill()
        if not self._result_sent and self._started:
            error = f"the tool's process broke the worker protocol and was ended: it {what}"
            self.channel.send(
                Envelope(self.session, Result(status="error", error=error, sandbox=self.layers))
            )
            self._result_sent = True
        self._reap()

    def _reap(self) -> None:
        """The executor closed its pipe: wait for its exit (killing it past a deadline)."""
        if self.exit_status is not None:
            return
        deadline_polls = int(_EXIT_WAIT_S / 0.01)
        for _ in range(deadline_polls):
            pid, status = os.waitpid(self.executor.pid, os.WNOHANG)
            if pid:
                self.exit_status = status
                return
            time.sleep(0.01)
        self.executor.kill()
        self.exit_status = os.waitpid(self.executor.pid, 0)[1]

    def close(self) -> None:
        """End the executor (the session is over or the worker is going) and reap it."""
        if self.exit_status is None:
            self.executor.kill()
            self.exit_status = os.waitpid(self.executor.pid, 0)[1]
        for fd in (self.executor.to_executor, self.executor.from_executor, self.executor.output):
            try:
                os.close(fd)
            except OSError:
                pass


def mirror_exit(returncode: int) -> int:
    """The worker's exit code for an executor that died without a result: the same code, or
    the same signal (so the runtime describes the death as before: SIGKILL, CPU limit...)."""
    if returncode < 0:
        if -returncode not in (signal.SIGKILL, signal.SIGSTOP):  # these have no handler
            signal.signal(-returncode, signal.SIG_DFL)
        os.kill(os.getpid(), -returncode)
    return returncode
