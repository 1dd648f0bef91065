"""Function calls: a plain Python callable, or a tool of an MCP server, called the moment its
JSON arguments close.

A model that writes several independent calls (``get_weather``, ``search_flights``,
``book_hotel``) need not wait for the end of its message before the first one starts: a
``FunctionSession`` reads one call's arguments as they are decoded (the ``json`` parser,
incrementally), and in the very delta that closes the top-level object it checks them
against the function's JSON Schema and hands the call to a ``FunctionRunner``, while the
model goes on writing the next call. A bad argument is an ``error`` result that says which
argument and why; nothing raises out of the stream.

Where calls run (``FunctionRunner``, one per process by default):
- a sync callable in a pool of daemon threads (a callable that hangs past its deadline keeps
  its thread, which Python cannot stop; its result is dropped, the call is a ``timeout``);
- an async callable and every MCP call on one event loop thread (cancelled at its deadline).
Several calls therefore run at once, each in its own time.

What a call returns becomes the text the model reads (``to_text``): a string as it is, a
dict, list or JSON scalar as JSON, anything else ``str()``; an MCP result as the text of its
content blocks. An exception is an ``error`` result naming the function and the exception.

A ``FunctionSession`` has the methods of a ``ToolSession`` that ``CallDriver`` and the
callers use (``feed_text``, ``end_input``, ``wait``, ``result``, ``cancel``,
``abort_reason``, ``timeline``), so a function call goes wherever a tool call goes. Its
timeline holds one unit: the arguments, ``decoded_at`` when they closed, ``sent_at`` when the
call was handed to the runner, ``started_at`` / ``finished_at`` when the function ran, and
``after == []`` (it waited for no other call). It never asks to stop decoding: a call's error
is that call's result, and the other calls of the message still run.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import inspect
import json
import queue
import threading
import time
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import Future
from typing import Any

from conveyor_sgl.errors import ConveyorError
from conveyor_sgl.parsers import ParseError
from conveyor_sgl.parsers.json_args import JsonArgsParser
from conveyor_sgl.runtime.timeline import ToolResult, ToolTimeline, UnitTiming
from conveyor_sgl.tools.validation import FieldValidator

DEFAULT_CALL_TIMEOUT_S = 60.0  # a call's own deadline, from the moment it is dispatched
_MAX_THREADS = 64  # sync calls at once (a hung one keeps its thread)
_IDLE_THREAD_S = 30.0  # an idle pool thread ends after this
_MIN_WAIT_S = 0.05  # a result that is already in never reads as a timeout


class FunctionCallError(ConveyorError, ValueError):
    """A function that cannot be used as a tool (a bad schema, an unknown MCP tool, ...)."""


class DeadlinePassed(Exception):
    """A call ran past its deadline (raised where the call runs, for a coroutine)."""


async def within(awaitable: Awaitable[Any], timeout_s: float) -> Any:
    """``await awaitable``, cancelled after ``timeout_s``: ``DeadlinePassed`` then (a
    ``TimeoutError`` the call raises itself stays its own error)."""
    scope = asyncio.timeout(timeout_s)
    try:
        async with scope:
            return await awaitable
    except TimeoutError:
        if scope.expired():
            raise DeadlinePassed from None
        raise


def to_text(value: Any) -> str:
    """What the model reads of a function's return value."""
    if isinstance(value, str):
        return value
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("utf-8", errors="replace")
    dump = getattr(value, "model_dump", None)  # a pydantic model
    if callable(dump):
        value = dump(mode="json")
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = dataclasses.asdict(value)
    if value is None or isinstance(value, dict | list | tuple | bool | int | float):
        try:
            return json.dumps(value, ensure_ascii=False, default=str)
        except (TypeError, ValueError):  # a cycle, a NaN key...: its plain text
            return str(value)
    return str(value)


class FunctionTool:
    """Something a call can run: ``name``, the JSON Schema of its arguments (None: any JSON
    object), a description, its deadline, and how to start it (``start``)."""

    kind = "function"

    def __init__(
        self,
        name: str,
        schema: Mapping[str, Any] | None = None,
        *,
        description: str | None = None,
        timeout_s: float | None = None,
    ) -> None:
        if not isinstance(name, str) or not name:
            raise FunctionCallError(f"a function tool needs a non-empty name, got {name!r}")
        timeout_s = DEFAULT_CALL_TIMEOUT_S if timeout_s is None else timeout_s
        if not isinstance(timeout_s, int | float) or isinstance(timeout_s, bool) or timeout_s <= 0:
            raise FunctionCallError(f"timeout_s must be a positive number, got {timeout_s!r}")
        self.name = name
        self.description = description
        self.timeout_s = float(timeout_s)
        self.schema: dict[str, Any] | None = None
        self._validator: FieldValidator | None = None
        self.set_schema(schema)

    def set_schema(self, schema: Mapping[str, Any] | None) -> None:
        """Check ``schema`` now (a bad one fails here, not mid-stream) and use it."""
        if schema is None:
            self.schema, self._validator = None, None
            return
        try:
            self._validator = FieldValidator(dict(schema))
        except (TypeError, ValueError) as e:
            raise FunctionCallError(f"function {self.name!r}: {e}") from None
        self.schema = dict(schema)

    def with_schema(self, schema: Mapping[str, Any] | None) -> FunctionTool:
        """A copy that checks its arguments against ``schema`` (same function)."""
        other = object.__new__(type(self))
        other.__dict__.update(self.__dict__)
        other.set_schema(schema)
        return other

    def check(self, arguments: Any) -> str | None:
        """Why ``arguments`` cannot be this function's, or None."""
        if not isinstance(arguments, dict):
            return f"the arguments must be a JSON object, got {type(arguments).__name__}"
        validator = self._validator
        if validator is None:
            return None
        for key, value in arguments.items():
            error = validator.field_error(key, value)
            if error is not None:
                return error
        return validator.whole_error(arguments)

    def declaration(self) -> dict[str, Any]:
        """Its entry in an OpenAI ``tools`` list."""
        function: dict[str, Any] = {"name": self.name}
        if self.description:
            function["description"] = self.description
        function["parameters"] = self.schema or {"type": "object"}
        return {"type": "function", "function": function}

    def start(
        self, arguments: dict[str, Any], runner: FunctionRunner, timing: UnitTiming
    ) -> Future[Any]:
        """Start the call; the future gives what ``render`` reads. ``timing`` gets the moments
        the function started and finished."""
        raise NotImplementedError

    def render(self, value: Any) -> tuple[str, str | None]:
        """The call's (output, error) from what its future gave."""
        return to_text(value), None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"


class CallableTool(FunctionTool):
    """A plain Python function, sync (in the runner's threads) or async (on its loop). Without
    ``schema``, its arguments are checked against a schema derived from its signature."""

    kind = "python"

    def __init__(
        self,
        fn: Callable[..., Any],
        *,
        name: str | None = None,
        schema: Mapping[str, Any] | None = None,
        description: str | None = None,
        timeout_s: float | None = None,
    ) -> None:
        if not callable(fn):
            raise FunctionCallError(f"a function tool needs a callable, got {fn!r}")
        self.fn = fn
        self.is_async = _is_async(fn)
        name = name or getattr(fn, "__name__", None) or ""
        if description is None:
            description = inspect.getdoc(fn) or None
        super().__init__(
            name,
            signature_schema(fn) if schema is None else schema,
            description=description,
            timeout_s=timeout_s,
        )

    def start(
        self, arguments: dict[str, Any], runner: FunctionRunner, timing: UnitTiming
    ) -> Future[Any]:
        fn, timeout_s = self.fn, self.timeout_s
        if self.is_async:

            async def call_async() -> Any:
                timing.started_at = time.monotonic()
                try:
                    return await within(fn(**arguments), timeout_s)
                finally:
                    timing.finished_at = time.monotonic()

            return runner.submit_coroutine(call_async)

        def call() -> Any:
            timing.started_at = time.monotonic()
            try:
                return fn(**arguments)
            finally:
                timing.finished_at = time.monotonic()

        return runner.submit(call)


def _is_async(fn: Callable[..., Any]) -> bool:
    target = getattr(fn, "__call__", None) if not inspect.isroutine(fn) else fn  # noqa: B004
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(target)


def signature_schema(fn: Callable[..., Any]) -> dict[str, Any] | None:
    """The JSON Schema of ``fn``'s keyword arguments, from its signature and annotations
    (pydantic's reading of them); None where it cannot be derived (any object then)."""
    try:
        from pydantic import TypeAdapter

        schema: dict[str, Any] = TypeAdapter(fn).json_schema()  # type: ignore[arg-type]
    except Exception:  # noqa: BLE001 - an annotation pydantic cannot read: no check
        return None
    if schema.get("type") != "object":
        return None
    return schema


def as_function_tool(
    obj: Any,
    *,
    schema: Mapping[str, Any] | None = None,
    timeout_s: float | None = None,
    name: str | None = None,
) -> FunctionTool:
    """A ``FunctionTool`` for ``obj``: a FunctionTool (an MCP tool among them) as it is, else
    a callable. ``schema`` replaces the one it has; ``timeout_s``, its deadline."""
    if isinstance(obj, FunctionTool):
        tool = obj
        if timeout_s is not None:
            tool = tool.with_schema(tool.schema)
            tool.timeout_s = float(timeout_s)
        return tool if schema is None else tool.with_schema(schema)
    if callable(obj):
        return CallableTool(obj, name=name, schema=schema, timeout_s=timeout_s)
    raise FunctionCallError(f"expected a callable or an MCP tool, got {obj!r}")


class FunctionRunner:
    """Runs calls: sync ones in a pool of daemon threads, coroutines on one event loop thread.
    Process-wide by default (``default_runner``); nothing to close (daemon threads)."""

    def __init__(self, max_threads: int = _MAX_THREADS) -> None:
        self._threads = _DaemonThreads(max_threads)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()

    def submit(self, fn: Callable[[], Any]) -> Future[Any]:
        return self._threads.submit(fn)

    def submit_coroutine(self, make: Callable[[], Awaitable[Any]]) -> Future[Any]:
        """Run ``make()`` (a coroutine function) on the loop; cancelling the future cancels it."""

        async def run() -> Any:
            return await make()

        return asyncio.run_coroutine_threadsafe(run(), self.loop())

    def loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                loop = _new_loop()
                thread = threading.Thread(
                    target=loop.run_forever, name="conveyor-functions-loop", daemon=True
                )
                thread.start()
                self._loop = loop
            return self._loop


def _new_loop() -> asyncio.AbstractEventLoop:
    """uvloop's loop where installed (SGLang depends on it): asyncio's own loop asks the
    process's loop policy for a child watcher at each subprocess it starts (an MCP stdio
    server), and once SGLang's server modules are imported that policy is uvloop's, which
    has none (NotImplementedError). uvloop's loop watches its children itself."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


class _DaemonThreads:
    """A thread pool whose threads are daemons: a call that never returns cannot hold the
    interpreter's exit (``ThreadPoolExecutor`` joins its threads at exit)."""

    def __init__(self, max_threads: int) -> None:
        self._max = max_threads
        self._queue: queue.SimpleQueue[tuple[Future[Any], Callable[[], Any]]] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._idle = 0  # threads waiting for work that no submit has claimed
        self._count = 0

    def submit(self, fn: Callable[[], Any]) -> Future[Any]:
        future: Future[Any] = Future()
        with self._lock:
            self._queue.put((future, fn))
            if self._idle > 0:
                self._idle -= 1  # one of them takes it
            elif self._count < self._max:
                self._count += 1
                threading.Thread(target=self._work, name="conveyor-function", daemon=True).start()
        return future

    def _work(self) -> None:
        while True:
            try:
                future, fn = self._queue.get(timeout=_IDLE_THREAD_S)
            except queue.Empty:
                with self._lock:
                    if self._idle > 0 and self._queue.empty():
                        self._idle -= 1
                        self._count -= 1
                        return
                continue  # a submit counted on this thread meanwhile
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(fn())
                except BaseException as e:  # noqa: BLE001 - the call's outcome, whatever it is
                    future.set_exception(e)
            with self._lock:
                self._idle += 1


_default_runner: FunctionRunner | None = None
_default_lock = threading.Lock()


def default_runner() -> FunctionRunner:
    global _default_runner
    with _default_lock:
        if _default_runner is None:
            _default_runner = FunctionRunner()
        return _default_runner


class FunctionSession:
    """One call of a ``FunctionTool``, fed its JSON arguments as they are decoded; the call
    starts when they close (``partial``) or when the input ends (``partial=False``: the
    sequential baseline). Used from one thread at a time, like ``ToolSession``."""

    def __init__(
        self,
        function: FunctionTool,
        *,
        partial: bool = True,
        mode: str = "client",
        t0: float | None = None,
        result_timeout_s: float = 30.0,
        runner: FunctionRunner | None = None,
    ) -> None:
        self.function = function
        self.tool = function.name
        self.partial = partial
        self.result_timeout_s = result_timeout_s
        self.timeline = ToolTimeline(mode=mode)
        self._t0 = time.monotonic() if t0 is None else t0
        self._runner = runner or default_runner()
        self._parser = JsonArgsParser()
        self._text: list[str] = []
        self._closed_at: float | None = None  # the arguments' closing '}' arrived
        self._arguments: dict[str, Any] | None = None
        self._unit: UnitTiming | None = None
        self._future: Future[Any] | None = None
        self._deadline: float | None = None  # the call's own (dispatch + timeout_s)
        self._result: ToolResult | None = None

    @property
    def abort_reason(self) -> str | None:
        """Never: a function call's error is its own result, the message goes on."""
        return None

    @property
    def arguments(self) -> str:
        """The arguments' text as decoded so far."""
        return "".join(self._text)

    def feed_text(self, delta: str, now: float | None = None) -> list[Any]:
        """Parse the next decoded text; the call starts in the delta that closes the object."""
        if self._result is not None or self._closed_at is not None or not delta:
            return []
        now = time.monotonic() if now is None else now
        self._text.append(delta)
        try:
            self._parser.feed(delta)
        except ParseError as e:
            self._fail(f"invalid JSON arguments: {e}")
            return []
        if self._parser.done:
            self._closed(now)
            if self.partial:
                self._dispatch()
        return []

    def end_input(self, now: float | None = None) -> None:
        """The call's input ended (the next call began, or the stream did)."""
        now = time.monotonic() if now is None else now
        if self.timeline.decode_finished_at is None:
            self.timeline.decode_finished_at = now
        if self._result is not None or self._future is not None:
            return
        if self._closed_at is None:
            try:
                self._parser.close()
            except ParseError as e:
                self._fail(f"the arguments were cut off: {e}")
                return
        self._dispatch()

    def wait(self, timeout_s: float) -> ToolResult | None:
        """The result if it is in within ``timeout_s`` (the call's own deadline counts too),
        else None; nothing is given up."""
        if self._result is None and self._future is None:
            self.end_input()
        if self._result is not None:
            return self._result
        assert self._future is not None  # noqa: S101 - dispatched, or concluded above
        until = time.monotonic() + max(timeout_s, 0.0)
        if self._deadline is not None and self._deadline <= until:
            self._wait_future(self._deadline)
            if self._result is None:  # its own deadline passed
                self._timed_out()
            return self._result
        self._wait_future(until)
        return self._result

    def result(self, timeout_s: float | None = None) -> ToolResult:
        """Wait (deadline) for the result; past it the call is given up (``timeout``)."""
        timeout_s = self.result_timeout_s if timeout_s is None else timeout_s
        result = self.wait(max(timeout_s, _MIN_WAIT_S))
        if result is None:
            error = f"function {self.tool!r} returned no result within {timeout_s:.3g}s"
            result = self._conclude("timeout", "", error)
            self._give_up()
        return result

    def cancel(self, reason: str = "cancelled by the program") -> None:
        if self._result is None:
            self._conclude("aborted", "", f"cancelled: {reason}")
            self._give_up()

    def close(self) -> None:
        self.cancel()

    def _closed(self, now: float) -> None:
        self._closed_at = now
        self.timeline.decode_finished_at = now  # the call's last token arrived
        text = self.arguments
        self._unit = UnitTiming(text=text, decoded_at=now, after=[])
        self.timeline.units.append(self._unit)
        try:
            self._arguments = json.loads(text)
        except ValueError as e:  # the parser checked the grammar: not expected
            self._fail(f"invalid JSON arguments: {e}")

    def _dispatch(self) -> None:
        if self._result is not None:
            return
        if self._unit is None:  # partial=False and the input just ended
            self._closed(self.timeline.decode_finished_at or time.monotonic())
            if self._result is not None:
                return
        unit = self._unit
        assert unit is not None  # noqa: S101 - set by _closed
        problem = self.function.check(self._arguments)
        if problem is not None:
            self._fail(problem)
            return
        assert isinstance(self._arguments, dict)  # noqa: S101 - check() said so
        unit.sent_at = time.monotonic()
        self._deadline = unit.sent_at + self.function.timeout_s
        try:
            self._future = self.function.start(self._arguments, self._runner, unit)
        except Exception as e:  # noqa: BLE001 - a tool that cannot start: its error result
            self._fail(f"could not start: {type(e).__name__}: {e}")

    def _wait_future(self, until: float) -> None:
        future = self._future
        assert future is not None  # noqa: S101 - the callers checked
        try:
            value = future.result(timeout=max(until - time.monotonic(), 0.0))
        except TimeoutError:
            if not future.done():
                return
            raised = future.exception() or TimeoutError()  # the function's own TimeoutError
            self._conclude("error", "", f"function {self.tool!r} raised {_describe(raised)}")
            return
        except DeadlinePassed:  # cancelled where it ran, at its deadline
            self._timed_out()
            return
        except asyncio.CancelledError:
            self._conclude("aborted", "", f"function {self.tool!r} was cancelled")
            return
        except Exception as e:  # noqa: BLE001 - the function raised: its error result
            self._conclude("error", "", f"function {self.tool!r} raised {_describe(e)}")
            return
        try:
            output, error = self.function.render(value)
        except Exception as e:  # noqa: BLE001 - a result that cannot be read
            output, error = "", f"function {self.tool!r}: unreadable result: {_describe(e)}"
        self._conclude("ok" if error is None else "error", output, error)

    def _timed_out(self) -> None:
        error = (
            f"function {self.tool!r} returned no result within its deadline of "
            f"{self.function.timeout_s:g}s"
        )
        self._conclude("timeout", "", error)
        self._give_up()

    def _give_up(self) -> None:
        if self._future is not None:
            self._future.cancel()  # a coroutine is cancelled; a running thread goes on

    def _fail(self, error: str) -> None:
        self._conclude("error", "", f"tool call {self.tool!r}: {error}")

    def _conclude(self, status: str, output: str, error: str | None) -> ToolResult:
        if self._result is not None:
            return self._result
        timeline = self.timeline
        timeline.status, timeline.output, timeline.error = status, output, error
        timeline.result_ready_at = time.monotonic()
        self._result = ToolResult(timeline, self._t0)
        return self._result


def _describe(e: BaseException) -> str:
    text = str(e)
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


def blob_text(data: str, mime_type: str | None) -> str:
    """A placeholder for binary content the model cannot read as text."""
    try:
        size = len(base64.b64decode(data, validate=False))
    except ValueError:
        size = len(data)
    return f"[{mime_type or 'binary'} content, {size} bytes]"
