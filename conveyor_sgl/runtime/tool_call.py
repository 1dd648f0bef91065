"""``CallDriver``: one partial tool call driven by decoded text, the one call loop.

Whoever reads the model's text and runs a tool on it (``run_tool``, the client-mode executor,
the server's ``tool_run``, the OpenAI helper) does the same four things through this class:
feed the decoded text with when it arrived, stop decoding when the tool asks, end the input,
take the result by a deadline. A generation's text is fed through ``take``, which holds back
any part of a stop string: the side that parses the stream holds back, once per stream, and
hands on the text it showed the tool (server mode sends it to the client with each event).

The session is a ``ToolSession`` (parser -> units -> a confined tool worker) or a
``FunctionSession`` (JSON arguments -> a Python callable or an MCP tool, called when they
close): both are a ``CallSession``.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any, Protocol

from conveyor_sgl.parsers.stop_text import StopHoldback
from conveyor_sgl.runtime.timeline import ToolResult, ToolTimeline

_MIN_WAIT_S = 0.05  # a result that is already in must never read as a timeout


class CallSession(Protocol):
    """What a call driver feeds: ``ToolSession`` and ``FunctionSession`` both are one."""

    tool: str  # the name results and metrics use
    timeline: ToolTimeline

    @property
    def abort_reason(self) -> str | None: ...

    def feed_text(self, delta: str, now: float | None = None) -> list[Any]: ...

    def end_input(self, now: float | None = None) -> None: ...

    def wait(self, timeout_s: float) -> ToolResult | None: ...

    def result(self, timeout_s: float | None = None) -> ToolResult: ...

    def cancel(self, reason: str = ...) -> None: ...


class CallDriver:
    """Feeds one ``CallSession``; ``stopped`` says the tool asked to stop decoding."""

    def __init__(self, session: CallSession, stops: str | Iterable[str] | None = None) -> None:
        self.session = session
        self.stopped = False  # the tool asked to stop decoding (or the input was cut)
        self._holdback = StopHoldback(stops)
        self._cut = False

    def feed(self, text: str, at: float | None = None) -> bool:
        """Decoded text that holds no stop string, and when it arrived: True once the tool
        asked to stop decoding (an invalid field, an error with ``abort_on_error``, text
        that can never parse). Empty text only asks."""
        if not self._cut:
            if text:
                self.session.feed_text(text, at)
            self.stopped = self.session.abort_reason is not None
        return self.stopped

    def take(self, text: str, meta_info: dict[str, Any], finished: bool, at: float | None) -> str:
        """A generation's whole text so far -> the new text to show, which the tool is fed.
        A tail that may still become a stop string is held back; when decoding stops early
        (``stopped`` after this call) it is plain text, shown but not fed."""
        shown = self._holdback.delta(text, meta_info, finished)
        if self.feed(shown, at) and not finished:
            shown += self._holdback.rest(text)
        return shown

    def cut(self) -> None:
        """Decoding is being stopped from outside (the server's cap): feed nothing more and
        touch no session from here (safe on any thread: it only sets flags)."""
        self._cut = self.stopped = True

    @property
    def abort_reason(self) -> str | None:
        """Why the tool asked to stop decoding, or None (non-blocking)."""
        return self.session.abort_reason

    def end(self, at: float | None = None) -> str | None:
        """Decoding ended: the tool has its whole input. Returns ``abort_reason``."""
        self.session.end_input(at)
        return self.session.abort_reason

    def wait(self, until: float) -> ToolResult | None:
        """The result if it is in by ``until`` (monotonic), else None; nothing is given up."""
        return self.session.wait(max(until - time.monotonic(), 0.0))

    def result(self, deadline: float) -> ToolResult:
        """The result, waiting until ``deadline`` (monotonic); past it the tool is given up
        and the result says it timed out."""
        return self.session.result(max(deadline - time.monotonic(), _MIN_WAIT_S))

    def cancel(self, reason: str) -> None:
        """Give the call up: the tool is cancelled and its worker ended (idempotent)."""
        self.session.cancel(reason)
