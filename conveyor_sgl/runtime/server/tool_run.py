"""One partial tool call inside the SGLang server (``--tool-partial-execution``).

The request's own output stream, read from the ``TokenizerManager`` in the HTTP process,
feeds a ``ToolSession``: the same parser, pool and worker code as client mode. The response
is the SSE stream that ``protocol.py`` describes: the generation's events, ``decode_end``, the
tool's result and timeline, ``[DONE]``.

Nothing here blocks the event loop: per token the session only parses and hands a frame to
ZeroMQ (non-blocking); the calls that wait (taking a worker, waiting for the result,
cancelling) run in a thread, one at a time per session (a lock), and the result is awaited
in slices so that a client that goes away frees its tool within one slice.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Executor
from contextlib import aclosing
from typing import Any, TypeVar

from conveyor_sgl.runtime.parsers.stop_text import StopHoldback
from conveyor_sgl.runtime.server.metrics import record_session_finished
from conveyor_sgl.runtime.server.protocol import (
    DECODE_END,
    EVENT_KEY,
    RESULT,
    SERVER_TIME_KEY,
    SSE_DONE,
)
from conveyor_sgl.runtime.session import ToolSession
from conveyor_sgl.runtime.timeline import ToolResult

T = TypeVar("T")
_WAIT_SLICE_S = 0.25  # how long one result wait may hold a thread before it looks up again
CLIENT_GONE = "the client went away (disconnected, timed out or the program ended)"


class ServerToolRun:
    """Drives one generation and its tool session; ``events()`` is the response body."""

    def __init__(
        self,
        tokenizer_manager: Any,
        obj: Any,
        session: ToolSession,
        *,
        t0: float,
        result_timeout: float,
        executor: Executor,
        dumps: Callable[[Any], bytes],
        lock: threading.Lock,
    ) -> None:
        self.tm = tokenizer_manager
        self.obj = obj  # a GenerateReqInput with stream=True
        self.session = session
        self.t0 = t0
        self.result_timeout = result_timeout
        self._executor = executor
        self._dumps = dumps
        self._lock = lock

    async def events(self, request: Any) -> AsyncIterator[bytes]:
        decoded = False
        try:
            async for frame in self._decode(request):
                yield frame
            decoded = True
            self.session.end_input()
            reason = self.session.abort_reason
            yield self._sse({EVENT_KEY: DECODE_END, "abort_reason": reason})
            result = await self._wait_result()
            yield self._sse({EVENT_KEY: RESULT, "tool": result.to_dict(self.t0)})
        except (ValueError, TypeError) as e:  # generate_request's answers to a bad request
            yield self._sse({"error": {"message": str(e), "type": "invalid_request_error"}})
        finally:
            # Reached at once when the client goes away: Starlette cancels this stream when
            # the connection drops, wherever it awaits (decoding or the result's wait).
            if self.session.timeline.status is None:
                # Not awaited: a cancelled response may not await anything any more.
                cancel = self._executor.submit(self._locked, self.session.cancel, CLIENT_GONE)
                cancel.add_done_callback(lambda _: record_session_finished(self.session))
            else:
                record_session_finished(self.session)
            if not decoded and isinstance(self.obj.rid, str) and self.obj.rid:
                self.tm.abort_request(self.obj.rid)  # nobody reads its tokens any more
        yield SSE_DONE

    async def _decode(self, request: Any) -> AsyncIterator[bytes]:
        holdback = StopHoldback((self.obj.sampling_params or {}).get("stop"))
        async with aclosing(self.tm.generate_request(self.obj, request)) as outputs:
            async for out in outputs:
                meta = out.get("meta_info") or {}
                # The moment the HTTP process had the token (the plugin's stamp).
                now = meta.get(SERVER_TIME_KEY) or time.monotonic()
                finished = meta.get("finish_reason") is not None
                delta = holdback.delta(out.get("text") or "", meta, finished)
                if delta:
                    self.session.feed_text(delta, now)
                yield self._sse(out)
                if not finished and self.session.abort_reason is not None:
                    # The tool asked to stop: end the request in the scheduler right now.
                    self.tm.abort_request(self.obj.rid)
                    return

    async def _wait_result(self) -> ToolResult:
        deadline = time.monotonic() + self.result_timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return await self.call(self.session.result, 0.0)
            result = await self.call(self.session.wait, min(remaining, _WAIT_SLICE_S))
            if result is not None:
                return result

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a blocking session call in the session thread pool, one at a time."""
        return await asyncio.wrap_future(self._executor.submit(self._locked, fn, *args))

    def _locked(self, fn: Callable[..., T], *args: Any) -> T:
        with self._lock:
            return fn(*args)

    def _sse(self, obj: Any) -> bytes:
        return b"data: " + self._dumps(obj) + b"\n\n"
