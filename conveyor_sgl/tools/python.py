"""The Python tool: runs each top-level statement of a program as soon as it is decoded.

Runs inside a tool worker process, one process per session. The result is the one a whole
run gives, ``exec(compile(program, "<tool>", "exec"), fresh_namespace)``, reported as a
terminal shows ``python program.py 2>&1 < /dev/null``:

- ``output``: compile-time warnings first, then stdout and stderr interleaved in write order,
  then the traceback (or ``sys.exit`` message) Python prints on the way out, then what the
  program's finalizers print at its end (``__del__``, a suspended generator's ``finally``,
  "Exception ignored in: ..."; ``python_exit``). Program output past ``max_output_bytes``
  (default 1 MiB) is cut at an ``[output truncated]`` line; the traceback is capped on its
  own, keeping its end (``[traceback truncated]``);
- ``status``: ``"ok"``; ``"error"`` after an exception or a non-zero ``sys.exit``;
  ``"aborted"`` after ``cancel()``;
- ``error``: one line, ``"ZeroDivisionError: division by zero"``, ``"SystemExit: 3"``,
  ``"SyntaxError: '(' was never closed (<tool>, line 3)"``; None when ok.

Config: ``max_output_bytes``; ``abort_on_error`` (default false): at the first statement
that raises (a non-zero ``sys.exit`` too) or does not compile, ask the runtime to stop
decoding; the result is the same ``"error"`` with the traceback, from the program as
decoded so far. Off by default because it cuts the model's text short (the program's
variable, the transcript and what later turns see) and the sequential baseline cannot do
it; and where a later statement would not compile, a whole run reports only that
SyntaxError, while the cut program reports the exception.

After an exception (or ``sys.exit``, even with code 0) later statements are compiled but
never run. A program that does not compile is reported as a whole run reports it: the
compile error alone (no traceback) and none of the output of the statements that already
ran. Their side effects (files written, requests sent) cannot be undone, though. Also beyond
equivalence: writes that bypass ``sys.stdout``/``sys.stderr`` (``os.write(1, ...)``,
subprocesses) go to the worker's own streams, and ``sys.stdout.fileno()`` is unsupported;
threads that outlive a statement print outside it, and so do finalizers the cycle
collector happens to run between statements; ``atexit`` handlers never run (nor does the
rest of what ``python_exit`` lists); recursion limits are hit a few frames earlier than in
a bare ``python``.
"""

from __future__ import annotations

import gc
import types
from typing import Any

from conveyor_sgl.parsers.base import Unit
from conveyor_sgl.tools.base import Abort, Tool, ToolOutput, check_known_options
from conveyor_sgl.tools.python_exec import (
    DEFAULT_MAX_OUTPUT_BYTES,
    OK,
    Outcome,
    ProcessView,
    Sink,
    compile_outcome,
    runtime_outcome,
    summary,
)
from conveyor_sgl.tools.python_exit import finalize
from conveyor_sgl.tools.python_report import report
from conveyor_sgl.tools.python_source import ProgramSource


class PythonTool(Tool):
    parser = "python"
    partial = True
    untrusted_code = True  # model-written code: confined whatever name it runs under

    @classmethod
    def check_config(cls, config: dict[str, Any]) -> None:
        check_known_options(config, ["max_output_bytes", "abort_on_error"])
        _max_output_bytes(config)
        _abort_on_error(config)

    @classmethod
    def may_abort(cls, config: dict[str, Any]) -> bool:
        return _abort_on_error(config)  # only then does a failed statement stop decoding

    def start(self, config: dict[str, Any]) -> None:
        # The worker's own objects (the runtime, preloaded tools) are never the program's
        # garbage: frozen (O(1)) out of every collection, a full one (the program's own or
        # at its end) costs what the program allocated, not ~10 ms more for the worker's.
        gc.freeze()
        self._limit = _max_output_bytes(config)
        self._abort_on_error = _abort_on_error(config)
        self._source = ProgramSource()
        self._sink = Sink(self._limit)
        self._view = ProcessView(self._sink)
        self._compile_error: Exception | None = None
        self._ended: Outcome | None = None  # set when an exception or exit stopped the run
        self._cancelled = False

    def feed(self, unit: Unit) -> Abort | None:
        if self._cancelled:
            return None
        lineno = self._source.add(unit.text, unit.data.get("lineno"))
        if self._compile_error is not None:
            return None  # the text is kept: finish() recompiles the whole program
        try:
            code = self._source.compile(unit.text, lineno)
        except Exception as exc:  # noqa: BLE001 - any compile failure is the program's error
            self._compile_error = exc
            return self._abort(summary(exc))
        if self._ended is None:
            self._ended = self._run(code)
            if self._ended is not None and self._ended.status == "error":
                return self._abort(self._ended.error or "error")
        return None

    def finish(self) -> ToolOutput:
        if self._cancelled:
            return self._output(Outcome("aborted", "cancelled"), self._warnings(), self._sink)
        failed = self._source.whole_error(self._compile_error)
        if failed is not None:
            # As a whole run: the compile warnings and the error, and no program output.
            exc, compile_warnings = failed
            return self._output(compile_outcome(exc, self._source.lines), compile_warnings, None)
        # Python prints the traceback, then finalizes what the program left behind.
        self._sink.end = self._sink.total
        finalize(self._view)
        return self._output(self._ended or OK, self._warnings(), self._sink)

    def cancel(self) -> None:
        # Between statements: later units are ignored. A statement already running is the
        # worker's to stop (it owns the process).
        self._cancelled = True

    def _warnings(self) -> str:
        # A whole run prints compile-time warnings before any output: put them first.
        return "".join(self._source.warnings)

    def _run(self, code: types.CodeType) -> Outcome | None:
        """Run one statement; the outcome if it ended the program (even ``sys.exit(0)``)."""
        with self._view.installed():
            try:
                exec(code, self._view.namespace)  # noqa: S102 - running the program is the job
            except BaseException as exc:  # noqa: BLE001 - KeyboardInterrupt, SystemExit too
                # Formatted now, inside the program's view, as a whole run would on its way
                # out; the exception (its frames' locals) lives until the program's end.
                self._view.last_exception = exc
                return runtime_outcome(exc)
        return None

    def _abort(self, error: str) -> Abort | None:
        """With ``abort_on_error``: the program has failed, so stop decoding the rest."""
        return Abort(error) if self._abort_on_error else None

    def _output(self, outcome: Outcome, head: str, sink: Sink | None) -> ToolOutput:
        return report(outcome, head, sink, self._limit)


def _abort_on_error(config: dict[str, Any]) -> bool:
    value = config.get("abort_on_error", False)
    if not isinstance(value, bool):
        raise TypeError(f"abort_on_error must be true or false, got {value!r}")
    return value


def _max_output_bytes(config: dict[str, Any]) -> int:
    limit = config.get("max_output_bytes", DEFAULT_MAX_OUTPUT_BYTES)
    if isinstance(limit, bool) or not isinstance(limit, int) or limit <= 0:
        raise ValueError(f"max_output_bytes must be a positive integer, got {limit!r}")
    return limit
