"""One tool session inside a worker, without sockets: envelopes in, payloads out.

Kept apart from the process loop so that it can be driven in one process by tests. Every
exception raised by tool code becomes data (``Result(status="error")``); nothing a tool does
short of killing the process can break the protocol.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from enum import Enum

from conveyor_sgl.parsers.base import Unit
from conveyor_sgl.runtime.workers.messages import (
    AbortDecoding,
    Cancel,
    Confined,
    Envelope,
    Error,
    Feed,
    Finish,
    Payload,
    Result,
    Shutdown,
    Start,
    UnitDone,
    describe_error,
)
from conveyor_sgl.tools.base import Abort, Tool, ToolOutput, UnitWork
from conveyor_sgl.tools.registry import load_tool_class

# SystemExit too: model-written code calling exit() must not end the worker silently.
_TOOL_ERRORS = (Exception, SystemExit)
_STATUSES = ("ok", "error", "aborted", "timeout")


class RunnerState(Enum):
    IDLE = "idle"  # waiting for start
    RUNNING = "running"
    ABORTED = "aborted"  # the tool asked to stop decoding; later units are not executed
    DONE = "done"


# Confines the process for a session: (its Start, the tool class) -> kernel layers in force.
Sandbox = Callable[[Start, type[Tool]], list[str] | None]


class ToolRunner:
    def __init__(self, sandbox: Sandbox = lambda start, tool_class: None) -> None:
        self._sandbox = sandbox
        self.state = RunnerState.IDLE
        self.session = ""
        self._tool: Tool | None = None
        self._pending: list[Feed] = []  # units for a tool that takes them only at finish
        self._fed: list[int] = []  # session unit index of each unit fed, in order
        self._abort_reason = ""

    @property
    def done(self) -> bool:
        return self.state is RunnerState.DONE

    @property
    def _started(self) -> Tool:
        """The tool of a session past start (RUNNING, ABORTED; DONE unless start failed)."""
        if self._tool is None:
            raise RuntimeError("the session's tool did not start")
        return self._tool

    def handle(self, envelope: Envelope) -> Iterator[Payload]:
        payload = envelope.payload
        if isinstance(payload, Error):
            # A frame we could not read: say so on stderr and keep serving.
            print(f"conveyor worker: ignored {payload.message}", file=sys.stderr)
            return
        if isinstance(payload, Shutdown):
            self._shutdown()
            return
        if self.state is RunnerState.IDLE:
            yield from self._handle_idle(envelope)
        elif envelope.session == self.session:
            yield from self._handle_running(payload)

    def _handle_idle(self, envelope: Envelope) -> Iterator[Payload]:
        self.session = envelope.session  # replies, even a protocol error, name the session
        if isinstance(envelope.payload, Start):
            yield from self._start(envelope.payload)
        else:
            yield from self._protocol_error(f"{envelope.kind.value} before start")

    def _handle_running(self, payload: Payload) -> Iterator[Payload]:
        if isinstance(payload, Feed):
            yield from self._feed(payload)
        elif isinstance(payload, Finish):
            yield from self._finish()
        elif isinstance(payload, Cancel):
            yield from self._cancel(payload.reason)
        else:
            yield from self._protocol_error(f"unexpected {type(payload).__name__} in a session")

    def _start(self, start: Start) -> Iterator[Payload]:
        try:
            tool_class = load_tool_class(start.target)
            # Trusted tool code, before the sandbox: a confined tool could not read its index
            # (or a lazy import) afterwards. A no-op where the warm worker preloaded it.
            tool_class.preload()
            layers = self._sandbox(start, tool_class)
        except _TOOL_ERRORS as e:
            yield from self._fail(e)
            return
        if layers is not None:
            yield Confined(layers=layers)  # before any tool code: see messages.Confined
        try:
            self._tool = tool_class()
            self._tool.start(dict(start.config))
        except _TOOL_ERRORS as e:
            yield from self._fail(e)
            return
        self.state = RunnerState.RUNNING

    def _feed(self, feed: Feed) -> Iterator[Payload]:
        if self.state is RunnerState.ABORTED:
            return
        if not self._started.partial:
            self._pending.append(feed)
            return
        yield from self._run_unit(feed)

    def _run_unit(self, feed: Feed) -> Iterator[Payload]:
        unit = Unit(text=feed.text, start=feed.start, end=feed.end, data=dict(feed.data))
        started_at = time.monotonic()
        self._fed.append(feed.index)
        try:
            verdict = self._started.feed(unit)
        except _TOOL_ERRORS as e:
            yield from self._fail(e)
            return
        yield UnitDone(index=feed.index, started_at=started_at, finished_at=time.monotonic())
        if isinstance(verdict, Abort):
            self.state = RunnerState.ABORTED
            self._abort_reason = str(verdict.reason)
            yield AbortDecoding(reason=self._abort_reason)

    def _finish(self) -> Iterator[Payload]:
        for feed in self._pending:
            if self.state is not RunnerState.RUNNING:
                break
            yield from self._run_unit(feed)
        if self.state is RunnerState.DONE:
            return
        try:
            output = self._started.finish()
        except _TOOL_ERRORS as e:
            yield from self._fail(e)
            return
        yield from self._work_of(output)
        yield self._result_of(output)
        self.state = RunnerState.DONE

    def _work_of(self, out: object) -> Iterator[UnitDone]:
        """The tool's own account of when it worked on each unit (overrides feed's span);
        entries naming a unit it was never fed are ignored."""
        fed = self._fed
        for work in getattr(out, "work", None) or []:
            if not isinstance(work, UnitWork) or not 0 <= work.unit < len(fed):
                continue
            after = [fed[i] for i in work.after if isinstance(i, int) and 0 <= i < len(fed)]
            yield UnitDone(
                index=fed[work.unit],
                started_at=float(work.started_at),
                finished_at=float(work.finished_at),
                after=after,
            )

    def _result_of(self, out: object) -> Result:
        if not isinstance(out, ToolOutput):
            kind = type(out).__name__
            return self._error(f"TypeError: finish() returned {kind}, not ToolOutput")
        if not isinstance(out.output, str) or out.status not in _STATUSES:
            return self._error(f"TypeError: bad ToolOutput from finish(): {out!r}")
        status, error = out.status, out.error
        if self.state is RunnerState.ABORTED and status == "ok":
            status, error = "aborted", error or self._abort_reason
        error = None if error is None else str(error)
        return Result(status=status, output=out.output, error=error)

    def _cancel(self, reason: str) -> Iterator[Payload]:
        error = f"cancelled: {reason}" if reason else "cancelled"
        try:
            self._started.cancel()
        except _TOOL_ERRORS as e:
            error += f" (cancel() raised {describe_error(e)})"
        self.state = RunnerState.DONE
        yield Result(status="aborted", error=error)

    def _shutdown(self) -> None:
        if self._tool is not None and self.state is not RunnerState.DONE:
            try:
                self._tool.cancel()
            except _TOOL_ERRORS:
                pass  # nobody is waiting for a result any more
        self.state = RunnerState.DONE

    def _fail(self, exc: BaseException) -> Iterator[Payload]:
        self.state = RunnerState.DONE
        yield self._error(describe_error(exc))

    def _protocol_error(self, what: str) -> Iterator[Payload]:
        self.state = RunnerState.DONE
        yield Error(message=f"protocol error: {what}")

    def _error(self, message: str) -> Result:
        return Result(status="error", error=message)
