"""One partial tool call: parser -> units -> one tool worker -> result, with its timeline.

The session owns the parser (it runs here, centrally, once) and one worker from the pool.
Units go to the worker as soon as they are decoded (``partial=True``) or all at the end of
decoding (``partial=False``: the sequential baseline). A session is used from one thread at
a time; different sessions run on different threads with their own workers and sockets.
"""

from __future__ import annotations

import functools
import logging
import time
import uuid
import weakref
from enum import Enum
from typing import Any, Self

from conveyor_sgl.parsers import ParseError, Unit, make_parser
from conveyor_sgl.process_group import describe_exit
from conveyor_sgl.runtime.sandbox import layers as sandbox_layers
from conveyor_sgl.runtime.timeline import ToolResult, ToolTimeline, UnitTiming
from conveyor_sgl.runtime.workers.channel import ChannelError
from conveyor_sgl.runtime.workers.messages import (
    AbortDecoding,
    Cancel,
    Envelope,
    Error,
    Feed,
    Finish,
    Limits,
    MessageError,
    Payload,
    Result,
    Start,
    UnitDone,
    describe_error,
    encode,
)
from conveyor_sgl.runtime.workers.pool import WorkerPool, default_pool
from conveyor_sgl.tools.base import Tool
from conveyor_sgl.tools.limits import limits_for
from conveyor_sgl.tools.registry import CheckedTool, ResolvedTool, check_tool

log = logging.getLogger(__name__)

_POLL_S = 0.05  # while waiting for a result: how quickly a dead worker is noticed
_SEND_TIMEOUT_S = 1.0  # a connected worker takes a frame at once (no high-water mark)
_EXIT_GRACE_S = 1.0  # a worker that sent its result exits by itself within milliseconds
_CANCEL_GRACE_S = 0.2  # time for tool.cancel() before the worker is terminated
_EXIT_DRAIN_S = 0.5  # after a worker exited: its last frames arrive within this


class SessionState(Enum):
    DECODING = "decoding"  # input still arriving
    WAITING = "waiting"  # finish sent, result not yet here
    DONE = "done"  # result known, worker released


class Release(Enum):
    """How the worker is let go once the result is known."""

    EXITING = "exiting"  # it sent its result and exits by itself
    CANCEL = "cancel"  # ask it to cancel the tool, then end it
    KILL = "kill"  # stuck, broken or already dead: end it now


class ToolSession:
    def __init__(
        self,
        tool: str | type[Tool] | ResolvedTool | CheckedTool,
        *,
        pool: WorkerPool | None = None,
        partial: bool = True,
        config: dict[str, Any] | None = None,
        mode: str = "client",
        limits: Limits | dict[str, Any] | None = None,
        t0: float | None = None,
        acquire_timeout_s: float = 60.0,  # waiting for a free worker when the pool is full
        result_timeout_s: float = 30.0,
    ) -> None:
        self.id = uuid.uuid4().hex
        # Resolved and checked once (a CheckedTool comes checked): the target, parser, config
        # and limits below all come from this one value.
        checked = check_tool(tool, config)
        self.resolved = checked.tool
        self.tool = self.resolved.name
        self.partial = partial
        self.result_timeout_s = result_timeout_s
        self.timeline = ToolTimeline(mode=mode)
        self._t0 = time.monotonic() if t0 is None else t0
        # Limits come from tools/limits.yaml; a dict overrides some fields, a Limits all.
        start = Start(
            target=self.resolved.target,
            config=dict(checked.config),
            limits=limits_for(self.resolved, limits),
        )
        encode(Envelope(session=self.id, payload=start))  # a config that cannot travel fails here
        if start.limits.confine:
            _warn_if_unconfined(self.tool)
        self._parser = make_parser(self.resolved.parser)
        self._unsent: list[tuple[Feed, UnitTiming]] = []
        self._held: list[str] = []  # deltas that could finish no unit (the parser's ``wake``)
        self._abort_reason: str | None = None
        self._result: ToolResult | None = None
        self._state = SessionState.DECODING
        self._handle = (pool or default_pool()).acquire(acquire_timeout_s, tool=start.target)
        # A session dropped without close() must not leave its worker behind.
        weakref.finalize(self, self._handle.kill)
        self._send(start)

    @property
    def abort_reason(self) -> str | None:
        """Why decoding should stop early: the tool asked (Abort) or the input can never
        parse (ParseError). Non-blocking: picks up messages that already arrived."""
        self._drain()
        return self._abort_reason

    def feed_text(self, delta: str, now: float | None = None) -> list[Unit]:
        """Parse the next decoded text; send each finished unit (partial) or keep it."""
        now = time.monotonic() if now is None else now
        if self._state is not SessionState.DECODING or self._abort_reason is not None:
            return []
        # Most tokens cannot finish a unit: hold them instead of waking the parser (and the
        # worker's socket) for each; they go in with the next delta that can.
        wake = getattr(self._parser, "wake", None)
        if wake is not None and wake.search(delta) is None:
            self._held.append(delta)
            return []
        if self._held:
            self._held.append(delta)
            delta = "".join(self._held)
            self._held.clear()
        try:
            units = self._parser.feed(delta)
        except ParseError as e:
            self._parse_failed(e)
            return []
        self._take(units, now)
        self._drain()
        return units

    def end_input(self, now: float | None = None) -> None:
        """Decoding ended: flush the parser, send what is left, then finish."""
        now = time.monotonic() if now is None else now
        if self.timeline.decode_finished_at is None:
            self.timeline.decode_finished_at = now
        if self._state is not SessionState.DECODING:
            return
        if self._abort_reason is None:  # after an abort the input is cut short on purpose
            try:
                held, self._held = "".join(self._held), []
                self._take([*(self._parser.feed(held) if held else []), *self._parser.close()], now)
            except ParseError as e:
                self._parse_failed(e)
                return
        for feed, timing in self._unsent:
            self._send_unit(feed, timing)
        self._unsent.clear()
        if self._state is SessionState.DECODING and self._send(Finish()):
            self._state = SessionState.WAITING

    def result(self, timeout_s: float | None = None) -> ToolResult:
        """Wait (deadline) for the tool's result, collecting unit timings meanwhile."""
        timeout_s = self.result_timeout_s if timeout_s is None else timeout_s
        result = self.wait(timeout_s)
        if result is None:
            error = f"tool {self.tool!r} returned no result within {timeout_s:.3g}s"
            return self._conclude("timeout", "", error, Release.KILL)
        return result

    def wait(self, timeout_s: float) -> ToolResult | None:
        """Like ``result`` but None at the deadline, without giving up on the tool: a caller
        that must stay responsive (the server's event loop) waits in slices."""
        if self._state is SessionState.DECODING:
            self.end_input()
        deadline = time.monotonic() + timeout_s
        while self._result is None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            envelope = self._handle.channel.recv(min(remaining, _POLL_S))
            if envelope is not None:
                self._on_message(envelope)
            elif (code := self._handle.exit_code()) is not None:
                self._worker_died(code)
        return self._result

    def cancel(self, reason: str = "cancelled by the program") -> None:
        """Abandon the call: the tool is cancelled and the worker ended (idempotent)."""
        if self._result is None:
            self._conclude("aborted", "", f"cancelled: {reason}", Release.CANCEL)

    def close(self) -> None:
        self.cancel()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _take(self, units: list[Unit], now: float) -> None:
        for unit in units:
            timing = UnitTiming(text=unit.text, decoded_at=now)
            index = len(self.timeline.units)
            feed = Feed(index=index, text=unit.text, start=unit.start, end=unit.end, data=unit.data)
            self.timeline.units.append(timing)
            if self.partial:
                self._send_unit(feed, timing)
            else:
                self._unsent.append((feed, timing))

    def _send_unit(self, feed: Feed, timing: UnitTiming) -> None:
        # Stamped before the send: the worker may start on it before send() returns here.
        sent_at = time.monotonic()
        if self._send(feed):
            timing.sent_at = sent_at

    def _send(self, payload: Payload) -> bool:
        if self._handle.closed:
            return False
        if (code := self._handle.exit_code()) is not None:
            self._worker_died(code)
            return False
        try:
            self._handle.channel.send(Envelope(self.id, payload), timeout_s=_SEND_TIMEOUT_S)
            return True
        except ChannelError as e:
            if (code := self._handle.exit_code()) is not None:
                self._worker_died(code)
            else:
                self._conclude("error", "", f"tool worker stopped reading: {e}", Release.KILL)
            return False
        except MessageError as e:
            # Text the codec cannot carry (a lone surrogate is not UTF-8): bad input, not a
            # crash of the program; decoding stops as after a parse error.
            self._abort_reason = f"tool input cannot be sent: {e}"
            self._conclude("error", "", self._abort_reason, Release.CANCEL)
            return False

    def _drain(self, quiet_s: float = 0.0) -> None:
        """Handle what has arrived; with ``quiet_s``, until nothing came for that long."""
        while not self._handle.closed:
            envelope = self._handle.channel.recv(quiet_s)
            if envelope is None:
                return
            self._on_message(envelope)

    def _on_message(self, envelope: Envelope) -> None:
        if envelope.session != self.id:
            # Undecodable frames arrive here as errors without a session: never fatal.
            log.warning("tool session %s ignored a message: %s", self.id, envelope.payload)
            return
        payload = envelope.payload
        if isinstance(payload, UnitDone):
            self._unit_done(payload)
        elif isinstance(payload, AbortDecoding):
            self._abort_reason = self._abort_reason or payload.reason
        elif isinstance(payload, Result):
            self.timeline.sandbox = payload.sandbox
            self._conclude(payload.status, payload.output, payload.error, Release.EXITING)
        elif isinstance(payload, Error):
            self._conclude("error", "", f"tool worker: {payload.message}", Release.KILL)

    def _unit_done(self, done: UnitDone) -> None:
        if 0 <= done.index < len(self.timeline.units):
            timing = self.timeline.units[done.index]
            timing.started_at, timing.finished_at = done.started_at, done.finished_at
            timing.after = done.after

    def _parse_failed(self, error: ParseError) -> None:
        self._abort_reason = describe_error(error)
        self._conclude("error", "", self._abort_reason, Release.CANCEL)

    def _worker_died(self, code: int) -> None:
        # A result sent right before the exit may still be in ZeroMQ's I/O thread (a large
        # one takes a while): wait until the channel goes quiet before calling it lost.
        self._drain(quiet_s=_EXIT_DRAIN_S)
        if self._result is None:
            self._conclude("error", "", f"tool worker {describe_exit(code)}", Release.KILL)

    def _conclude(
        self, status: str, output: str, error: str | None, release: Release
    ) -> ToolResult:
        timeline = self.timeline
        timeline.status, timeline.output, timeline.error = status, output, error
        timeline.result_ready_at = time.monotonic()
        self._result = ToolResult(timeline, self._t0)
        self._state = SessionState.DONE
        self._release(release)
        return self._result

    def _release(self, release: Release) -> None:
        if release is Release.CANCEL and not self._handle.closed:
            try:
                self._handle.channel.send(Envelope(self.id, Cancel()), timeout_s=0.0)
            except ChannelError:
                pass
        grace = {Release.EXITING: _EXIT_GRACE_S, Release.CANCEL: _CANCEL_GRACE_S}
        self._handle.close(grace_s=grace.get(release, 0.0))


@functools.cache  # once per tool and process: the result's ``sandbox`` says it every time
def _warn_if_unconfined(tool: str) -> None:
    # Client mode still runs where the kernel lacks Landlock (server mode refuses): say so.
    missing = sandbox_layers.report()["missing"]
    if "landlock" in missing:  # type: ignore[operator]
        log.warning(
            "tool %r runs model-written code without kernel filesystem confinement "
            "(missing or disabled: %s); see README, Sandbox",
            tool,
            ", ".join(missing),  # type: ignore[arg-type]
        )
