"""One partial tool call inside the SGLang server (``--tool-partial-execution``).

The request's own output stream, read from the ``TokenizerManager`` in the HTTP process,
feeds a ``ToolSession``: the same parser, pool and worker code as client mode. The response
is the SSE stream that ``protocol.py`` describes: the generation's events, ``decode_end``, the
tool's result and timeline, ``[DONE]``.

Nothing here blocks the event loop: per token the session only parses and hands a frame to
ZeroMQ (non-blocking); the calls that wait (taking a worker, waiting for the result,
cancelling) run in a thread, one at a time per session (a lock), and the result is awaited
in slices so that a client that goes away frees its tool within one slice.

A session lasts at most the operator's ``max_session_s`` (``--tool-max-session-s``) from the
request's arrival: a timer on the event loop then ends it wherever it is (decoding: the
generation is aborted and the session takes no more text; waiting: the wait ends; a client
that reads nothing: the worker is freed all the same). The tool is cancelled with a reason
that names the cap, the stream (if anyone reads it) reports it as the ``abort_reason`` of
``decode_end`` and in the result (status ``aborted``), and ``on_end`` runs: the client's place
(``fair_share.Slot``) is free again. ``on_end`` also runs when the session ends otherwise.

The generation may ask the scheduler to hold its prefix while the tool runs (its kv_hints,
``prefix_holds.py``); a stream that ends before the result reached it (a client gone, a cap)
gives that hold up at once: nobody will come back to continue it.
"""

from __future__ import annotations

import asyncio
import threading
import time
import weakref
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Executor, Future
from contextlib import aclosing
from typing import Any, TypeVar

import msgspec

from conveyor_sgl.runtime.server.metrics import record_session_finished
from conveyor_sgl.runtime.server.prefix_hold_hooks import release_holds
from conveyor_sgl.runtime.server.protocol import (
    SERVER_TIME_KEY,
    SSE_DONE,
    TEXT_KEY,
    DecodeEnd,
    Timeline,
    ToolDone,
    prefix_hold_of,
    sse_event,
)
from conveyor_sgl.runtime.timeline import ToolResult
from conveyor_sgl.runtime.tool_call import CallDriver, CallSession

T = TypeVar("T")
_WAIT_SLICE_S = 0.25  # how long one result wait may hold a thread before it looks up again
CLIENT_GONE = "the client went away (disconnected, timed out or the program ended)"


def cap_reason(max_session_s: float) -> str:
    return (
        f"the session passed this server's cap on a session's wall time, {max_session_s:g}s "
        "(--tool-max-session-s)"
    )


class ServerToolRun:
    """Drives one generation and its tool session; ``events()`` is the response body."""

    def __init__(
        self,
        tokenizer_manager: Any,
        obj: Any,
        session: CallSession,  # a tool's session, or a call of an operator's MCP tool
        *,
        t0: float,
        result_timeout: float,
        executor: Executor,
        dumps: Callable[[Any], bytes],
        lock: threading.Lock,
        max_session_s: float | None = None,
        on_end: Callable[[], None] | None = None,
    ) -> None:
        self.tm = tokenizer_manager
        self.obj = obj  # a GenerateReqInput with stream=True
        self.session = session
        # It parses the stream, so it holds back stop strings: the client shows its text.
        self.driver = CallDriver(session, (obj.sampling_params or {}).get("stop"))
        self.t0 = t0
        self.result_timeout = result_timeout
        self._executor = executor
        self._dumps = dumps
        self._lock = lock
        self.max_session_s = max_session_s
        self._release = _Once(on_end)
        # A response whose stream never starts (its client gone before) is dropped unread:
        # its session's worker goes with the session, the client's place with this run.
        weakref.finalize(self, self._release)
        self._decoding = True  # the scheduler may still be generating for this request
        # Once the cap passed: the session's cancel, in the session threads. From then on
        # the event loop leaves the session alone (the cancel may be running).
        self._capped: Future[None] | None = None
        self._cap_reason = cap_reason(max_session_s) if max_session_s is not None else ""
        self._timer: asyncio.TimerHandle | None = None
        self._delivered = False  # the result reached the stream: the program goes on

    async def events(self, request: Any) -> AsyncIterator[bytes]:
        if self.max_session_s is not None:  # the cap counts from the request's arrival
            delay = max(0.0, self.t0 + self.max_session_s - time.monotonic())
            self._timer = asyncio.get_running_loop().call_later(delay, self._cap_passed)
        try:
            async for frame in self._decode(request):
                yield frame
            self._decoding = False
            reason = self.driver.end() if self._capped is None else self._cap_reason
            yield sse_event(DecodeEnd(reason))
            result = await self._wait_result()
            timeline = result.timeline.moved(-self.t0)  # times since the request's receipt
            yield sse_event(ToolDone(msgspec.convert(timeline, Timeline, from_attributes=True)))
            self._delivered = True
        except (ValueError, TypeError) as e:  # generate_request's answers to a bad request
            yield self._sse({"error": {"message": str(e), "type": "invalid_request_error"}})
        finally:
            # Reached at once when the client goes away: Starlette cancels this stream when
            # the connection drops, wherever it awaits (decoding or the result's wait).
            if self._timer is not None:
                self._timer.cancel()
            ending = self._capped
            if ending is None and self.session.timeline.status is None:
                # Not awaited: a cancelled response may not await anything any more.
                ending = self._executor.submit(self._locked, self.session.cancel, CLIENT_GONE)
            if ending is not None:
                ending.add_done_callback(lambda _: self._ended())
            else:
                self._ended()
            if self._decoding:
                self._abort_generation()  # nobody reads its tokens any more
            if not self._delivered:
                self._release_prefix_hold()  # nobody comes back to continue it
        yield SSE_DONE

    async def _decode(self, request: Any) -> AsyncIterator[bytes]:
        async with aclosing(self.tm.generate_request(self.obj, request)) as outputs:
            async for out in outputs:
                meta = out.get("meta_info") or {}
                # The moment the HTTP process had the token (the plugin's stamp).
                now = meta.get(SERVER_TIME_KEY) or time.monotonic()
                finished = meta.get("finish_reason") is not None
                shown = self.driver.take(out.get("text") or "", meta, finished, now)
                yield self._sse({**out, TEXT_KEY: shown})
                if not finished and self.driver.stopped:
                    # The tool asked to stop, or the cap passed (which may have come before
                    # the rid): end the request in the scheduler right now.
                    self._abort_generation()
                    return

    def _cap_passed(self) -> None:
        """The session's wall time is up (on the event loop, between two of its steps)."""
        self._timer = None
        if self._capped is not None:
            return
        if self._decoding:
            self.driver.cut()  # the session is the cancel's from now on
            self._abort_generation()  # its last output ends the decoding loop
        try:
            self._capped = self._executor.submit(
                self._locked, self.session.cancel, self._cap_reason
            )
        except RuntimeError:  # the server is shutting down: the pool ends every worker
            self._release()
            return
        # The worker is free: so is the client's place, whether the stream goes on or not.
        self._capped.add_done_callback(lambda _: self._release())

    def _abort_generation(self) -> None:
        if isinstance(self.obj.rid, str) and self.obj.rid:
            self.tm.abort_request(self.obj.rid)

    def _release_prefix_hold(self) -> None:
        hint = prefix_hold_of(getattr(self.obj, "kv_hints", None))
        if hint is not None and hint.hold is not None:
            release_holds(self.tm, [hint.hold])

    def _ended(self) -> None:
        record_session_finished(self.session)
        self._release()

    async def _wait_result(self) -> ToolResult:
        deadline = time.monotonic() + self.result_timeout
        while self._capped is None and time.monotonic() < deadline:
            until = min(deadline, time.monotonic() + _WAIT_SLICE_S)
            result = await self.call(self.driver.wait, until)
            if result is not None:
                return result
        if self._capped is not None:  # cancelled (or being cancelled) by the cap
            await asyncio.wrap_future(self._capped)
        return await self.call(self.driver.result, deadline)

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a blocking session call in the session thread pool, one at a time."""
        return await asyncio.wrap_future(self._executor.submit(self._locked, fn, *args))

    def _locked(self, fn: Callable[..., T], *args: Any) -> T:
        with self._lock:
            return fn(*args)

    def _sse(self, obj: Any) -> bytes:
        return b"data: " + self._dumps(obj) + b"\n\n"


class _Once:
    """``fn`` on the first call only, from whichever thread comes first."""

    def __init__(self, fn: Callable[[], None] | None) -> None:
        self._fn = fn
        self._lock = threading.Lock()

    def __call__(self) -> None:
        with self._lock:
            fn, self._fn = self._fn, None
        if fn is not None:
            fn()
