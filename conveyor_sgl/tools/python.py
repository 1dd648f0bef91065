"""The Python tool: runs each top-level statement of a program as soon as it is decoded.

Runs inside a tool worker process, one process per session. The result is the one a whole
run gives, ``exec(compile(program, "<tool>", "exec"), fresh_namespace)``, reported as a
terminal shows ``python program.py 2>&1 < /dev/null``:

- ``output``: compile-time warnings first, then stdout and stderr interleaved in write order,
  then the traceback (or ``sys.exit`` message) Python prints on the way out. Program output
  past ``max_output_bytes`` (default 1 MiB) is cut at an ``[output truncated]`` line; the
  traceback is capped on its own, keeping its end (``[traceback truncated]``);
- ``status``: ``"ok"``; ``"error"`` after an exception or a non-zero ``sys.exit``;
  ``"aborted"`` after ``cancel()``;
- ``error``: one line, ``"ZeroDivisionError: division by zero"``, ``"SystemExit: 3"``,
  ``"SyntaxError: '(' was never closed (<tool>, line 3)"``; None when ok.

After an exception (or ``sys.exit``, even with code 0) later statements are compiled but
never run. A program that does not compile is reported as a whole run reports it: the
compile error alone (no traceback) and none of the output of the statements that already
ran. Their side effects (files written, requests sent) cannot be undone, though. Also beyond
equivalence: writes that bypass ``sys.stdout``/``sys.stderr`` (``os.write(1, ...)``,
subprocesses) go to the worker's own streams, and ``sys.stdout.fileno()`` is unsupported;
threads that outlive a statement print outside it; ``atexit`` handlers never run; recursion
limits are hit a few frames earlier than in a bare ``python``.
"""

from __future__ import annotations

import types
from typing import Any

from conveyor_sgl.runtime.parsers.base import Unit
from conveyor_sgl.tools.base import Tool, ToolOutput, check_known_options
from conveyor_sgl.tools.python_exec import (
    DEFAULT_MAX_OUTPUT_BYTES,
    OK,
    Outcome,
    ProcessView,
    Sink,
    compile_outcome,
    report,
    runtime_outcome,
)
from conveyor_sgl.tools.python_source import ProgramSource


class PythonTool(Tool):
    parser = "python"
    partial = True
    untrusted_code = True  # model-written code: confined whatever name it runs under

    @classmethod
    def check_config(cls, config: dict[str, Any]) -> None:
        check_known_options(config, ["max_output_bytes"])
        _max_output_bytes(config)

    def start(self, config: dict[str, Any]) -> None:
        self._limit = _max_output_bytes(config)
        self._source = ProgramSource()
        self._sink = Sink(self._limit)
        self._view = ProcessView(self._sink)
        self._compile_error: Exception | None = None
        self._ended: Outcome | None = None  # set when an exception or exit stopped the run
        self._cancelled = False

    def feed(self, unit: Unit) -> None:
        if self._cancelled:
            return
        lineno = self._source.add(unit.text, unit.data.get("lineno"))
        if self._compile_error is not None:
            return  # the text is kept: finish() recompiles the whole program
        try:
            code = self._source.compile(unit.text, lineno)
        except Exception as exc:  # noqa: BLE001 - any compile failure is the program's error
            self._compile_error = exc
            return
        if self._ended is None:
            self._ended = self._run(code)

    def finish(self) -> ToolOutput:
        if self._cancelled:
            return self._output(Outcome("aborted", "cancelled"), self._warnings(), self._sink)
        failed = self._source.whole_error(self._compile_error)
        if failed is not None:
            # As a whole run: the compile warnings and the error, and no program output.
            exc, compile_warnings = failed
            return self._output(compile_outcome(exc, self._source.lines), compile_warnings, None)
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
                # out; only text is kept, so the traceback's frames are released.
                return runtime_outcome(exc)
        return None

    def _output(self, outcome: Outcome, head: str, sink: Sink | None) -> ToolOutput:
        return report(outcome, head, sink, self._limit)


def _max_output_bytes(config: dict[str, Any]) -> int:
    limit = config.get("max_output_bytes", DEFAULT_MAX_OUTPUT_BYTES)
    if isinstance(limit, bool) or not isinstance(limit, int) or limit <= 0:
        raise ValueError(f"max_output_bytes must be a positive integer, got {limit!r}")
    return limit
