"""What a Python program sees and what it leaves behind: its I/O and its error reports.

Shared by the Python tool (which runs a program one statement at a time) and by the
whole-program reference run in the tests, so that both capture output and format errors the
same way and only real differences in execution show up.

The reported text (``python_report``) is what a terminal shows for ``python program.py 2>&1
< /dev/null``: stdout and stderr interleaved in the order they were written (unbuffered),
then the traceback (or ``sys.exit`` message) that Python would print on the way out, then
what finalizers print at exit (``python_exit``).
"""

from __future__ import annotations

import builtins
import io
import linecache
import sys
import traceback
import types
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from conveyor_sgl.tools.base import Status
from conveyor_sgl.tools.python_exit import UnraisableHook, type_name

if TYPE_CHECKING:
    from typing_extensions import Buffer  # collections.abc.Buffer is 3.12+

FILENAME = "<tool>"
DEFAULT_MAX_OUTPUT_BYTES = 1 << 20


class Sink(io.RawIOBase):
    """Keeps the first ``limit`` bytes written and only counts the rest.

    A runaway print loop must not exhaust the worker's memory.
    """

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit
        self.data = bytearray()
        self.total = 0
        # Bytes counted when the program ended: what comes after it (finalizers at exit)
        # follows the traceback in the report, as Python prints it before finalizing.
        self.end: int | None = None

    def writable(self) -> bool:
        return True

    def write(self, b: Buffer) -> int:
        data = bytes(b)
        room = self.limit - len(self.data)
        if room > 0:
            self.data += data[:room]
        self.total += len(data)
        return len(data)


class ProcessView:
    """The process-wide state a program sees: its standard streams, argv and ``__main__``.

    Swapped in around each statement, so the worker's own I/O is untouched in between, while
    changes the program makes (``sys.stdout = buf``) carry over to its next statement as they
    would in a whole run. ``__main__`` is the program's module so that pickle, dataclasses
    and ``typing.get_type_hints`` find the program's classes. ``last_exception`` holds the
    exception that ended the program, as ``sys.last_value`` does until Python exits (its
    frames, and their locals, live until then).
    """

    def __init__(self, sink: Sink) -> None:
        self._main: types.ModuleType | None = types.ModuleType("__main__")
        self._main.__dict__["__builtins__"] = builtins
        self.last_exception: BaseException | None = None
        # No stdin: input() raises EOFError, as for ``python program.py < /dev/null``.
        # write_through keeps stdout and stderr in the order they were written; the error
        # handlers are CPython's own for a UTF-8 stdout and stderr.
        streams = (
            io.TextIOWrapper(io.BytesIO(), encoding="utf-8"),
            _text_stream(sink, errors="strict"),
            _text_stream(sink, errors="backslashreplace"),
        )
        self.unraisable = UnraisableHook()
        self._outer_main: object = _MISSING  # the worker's own, while the program's is in
        self._state: dict[str, object] = {
            **dict(zip(("stdin", "stdout", "stderr"), streams, strict=True)),
            # What ``sys.stdout = sys.__stdout__`` restores, and what Python's exit does.
            **dict(zip(("__stdin__", "__stdout__", "__stderr__"), streams, strict=True)),
            "argv": [FILENAME],  # argparse in a main block sees no arguments
            "unraisablehook": self.unraisable,
        }

    @property
    def namespace(self) -> dict:
        """The program's globals: ``{"__name__": "__main__", "__builtins__": builtins}``."""
        if self._main is None:
            raise RuntimeError("the program has ended: its namespace was released")
        return self._main.__dict__

    def globals_shared(self) -> bool:
        """Whether anything but the view holds the program's module or its globals (while
        installed): a function or class the program defined, a frame, a generator, a kept
        ``globals()`` or ``import __main__``. Only the cycle collector can free those."""
        if self._main is None:
            return False
        # getrefcount counts its own argument; the module: the view and its entries in
        # sys.modules ("__main__", "__mp_main__" once multiprocessing is imported); its
        # dict: the module.
        held = 2 + len(self._module_names())
        return sys.getrefcount(self._main) > held or sys.getrefcount(self._main.__dict__) > 2

    def release_main(self) -> None:
        """Drop the program's module (while installed), as Python's exit removes every module
        from ``sys.modules``: its globals go once nothing else holds them."""
        for name in self._module_names():
            if name != "__main__":
                del sys.modules[name]
        self._restore_main()
        self._main = None

    def _module_names(self) -> list[str]:
        return [name for name, module in list(sys.modules.items()) if module is self._main]

    @contextmanager
    def installed(self) -> Iterator[None]:
        saved = _swap_sys(self._state)
        self._outer_main = sys.modules.get("__main__", _MISSING)
        if self._main is not None:
            sys.modules["__main__"] = self._main
        try:
            yield
        finally:
            self._state = _swap_sys(saved)
            self._restore_main()

    def _restore_main(self) -> None:
        if self._outer_main is _MISSING:
            sys.modules.pop("__main__", None)
        else:
            sys.modules["__main__"] = self._outer_main  # type: ignore[assignment]


def _swap_sys(values: dict[str, object]) -> dict[str, object]:
    """Set these ``sys`` attributes (``_MISSING``: delete it); return the ones replaced."""
    old = {name: getattr(sys, name, _MISSING) for name in values}
    for name, value in values.items():
        if value is not _MISSING:
            setattr(sys, name, value)
        elif hasattr(sys, name):  # a program that deleted sys.stdout gets no new one
            delattr(sys, name)
    return old


_MISSING = object()


def _text_stream(sink: Sink, errors: str) -> io.TextIOWrapper:
    # The stubs want a buffer with .name; TextIOWrapper reads it only when asked (AttributeError).
    return io.TextIOWrapper(
        sink,  # type: ignore[arg-type]
        encoding="utf-8",
        errors=errors,
        newline="\n",
        write_through=True,
    )


def register_source(lines: list[str]) -> None:
    """Let tracebacks, warnings and ``inspect`` show the program's source lines.

    The cache holds the list itself, so lines added to it later show too (a program that
    clears the cache loses them, as in a whole run). mtime None marks the entry as not
    backed by a file, so ``linecache.checkcache`` keeps it.
    """
    linecache.cache[FILENAME] = (sum(map(len, lines)), None, lines, FILENAME)


def split_lines(text: str) -> list[str]:
    """Lines as the tokenizer sees them: split at ``\\n`` only, each keeping its end."""
    return io.StringIO(text, newline="").readlines()


@dataclass(frozen=True)
class Outcome:
    """How a run ended: status, one-line error, and the text Python prints on the way out."""

    status: Status = "ok"
    error: str | None = None
    tail: str = ""


OK = Outcome()


def runtime_outcome(exc: BaseException) -> Outcome:
    """The outcome of an exception raised by running the program.

    The traceback skips its first frame: that is the ``exec`` call of whoever ran the program.
    """
    if isinstance(exc, SystemExit):
        return _exit_outcome(exc)
    tb = exc.__traceback__
    exc.with_traceback(tb.tb_next if tb is not None else None)
    return Outcome("error", summary(exc), _format(exc, only=False))


def compile_outcome(exc: Exception, lines: list[str]) -> Outcome:
    """The outcome of a program that does not compile: Python shows no traceback, only the
    error with its line (taken from the program when the compiler could not read it back)."""
    if isinstance(exc, SyntaxError) and exc.text is None:
        n = exc.lineno or 0
        if 0 < n <= len(lines):
            exc.text = lines[n - 1]
    return Outcome("error", summary(exc), _format(exc, only=True))


def _exit_outcome(exc: SystemExit) -> Outcome:
    # CPython's exit handling: None and ints are exit codes, anything else is printed.
    code = exc.code
    if code is None or (isinstance(code, int) and code == 0):
        return OK
    tail = "" if isinstance(code, int) else f"{code}\n"
    return Outcome("error", f"SystemExit: {code}", tail)


def summary(exc: BaseException) -> str:
    """``"ZeroDivisionError: division by zero"``: the type as tracebacks name it, and str()."""
    name = type_name(type(exc))
    try:
        message = str(exc)
    except Exception:  # noqa: BLE001 - a broken __str__ is the program's, not ours
        message = "<exception str() failed>"  # traceback's own wording
    return f"{name}: {message}" if message else name


def _format(exc: BaseException, only: bool) -> str:
    try:
        lines = traceback.format_exception_only(exc) if only else traceback.format_exception(exc)
        return "".join(_with_suggestion(lines, exc))
    except Exception:  # noqa: BLE001 - a report must come back even if formatting broke
        return summary(exc) + "\n"


def _with_suggestion(lines: list[str], exc: BaseException) -> list[str]:
    """Python 3.11 prints "Did you mean: 'x'?" for a NameError or AttributeError from C
    (``PyErr_Display``), which the ``traceback`` module does not (before 3.12): an agent
    fixes its code from that hint, so take it from the interpreter's own display."""
    if not isinstance(exc, NameError | AttributeError) or not lines:
        return lines
    message = traceback.format_exception_only(exc)[0].rstrip("\n")
    shown = io.StringIO()
    # The display writes to sys.stderr; the swap is brief and only on the error path.
    saved, sys.stderr = sys.stderr, shown
    try:
        sys.__excepthook__(type(exc), exc, exc.__traceback__)
    finally:
        sys.stderr = saved
    hinted = [line for line in shown.getvalue().splitlines() if line.startswith(message + ". ")]
    if not hinted:
        return lines
    last = max(i for i, line in enumerate(lines) if line.rstrip("\n") == message)
    return [*lines[:last], hinted[-1] + "\n", *lines[last + 1 :]]
