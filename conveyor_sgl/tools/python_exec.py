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

import ast
import builtins
import io
import linecache
import sys
import traceback
import types
import unicodedata
import warnings
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
        tb = None if only else exc.__traceback__
        report = traceback.TracebackException(type(exc), exc, tb, compact=True)
        _display_as_cpython(report)
        lines = list(report.format_exception_only() if only else report.format())
        return "".join(_with_suggestion(lines, exc))
    except Exception:  # noqa: BLE001 - a report must come back even if formatting broke
        return summary(exc) + "\n"


def _display_as_cpython(report: traceback.TracebackException) -> None:
    """Show the frames of ``report`` and of every exception chained to it as the
    interpreter's own display does (``DisplayedStack``)."""
    seen: set[int] = set()
    todo: list[traceback.TracebackException | None] = [report]
    while todo:
        item = todo.pop()
        if item is None or id(item) in seen:
            continue
        seen.add(id(item))
        item.stack = DisplayedStack(item.stack)
        item.__class__ = _DisplayedReport  # chained reports are built as the base class
        todo += [item.__cause__, item.__context__, *(getattr(item, "exceptions", None) or [])]


_WHITESPACE = b" \t\f"  # what the interpreter's display calls whitespace (IS_WHITESPACE)
_INDENT = 4  # a source line's indent in a traceback


class DisplayedStack(traceback.StackSummary):
    """Frames as a file run prints them: Python's exit displays an uncaught exception in C
    (``tb_displayline``), which the ``traceback`` module only approximates. Where they
    differ (a line that ends in spaces or tabs: the module strips them and shifts its
    carets by as many columns, or drops them), this is the C display, step for step: the
    line with its indentation (spaces, tabs, form feeds) removed and its end kept, then
    carets from the instruction's columns, with anchors for a binary operation or a
    subscript, elided when they span the whole line. A ``<...>`` file other than the
    program has no source lines, as the interpreter opens no such file."""

    def format_frame_summary(self, frame_summary: traceback.FrameSummary) -> str:
        f = frame_summary
        row = f'  File "{f.filename}", line {f.lineno}, in {f.name}\n'
        line = _displayed_line(f.filename, f.lineno)
        if line is None:
            return row
        body = line.lstrip(" \t\f")
        row += " " * _INDENT + body + "\n"
        try:
            return row + _carets(f, line, len(line) - len(body))
        except (UnicodeError, ValueError, IndexError):  # as the C display gives up on a line
            return row


class _DisplayedReport(traceback.TracebackException):
    def _format_syntax_error(self, stype: str) -> Iterator[str]:
        """A SyntaxError's location as the interpreter prints it (``print_error_text``):
        the ``traceback`` module keeps a leading tab, and tabs before the caret, which the
        interpreter strips and prints as spaces."""
        return _format_syntax_error(self, stype)


def _format_syntax_error(report: traceback.TracebackException, stype: str) -> Iterator[str]:
    suffix = ""
    if report.lineno is not None:
        yield f'  File "{report.filename or "<string>"}", line {report.lineno}\n'
    elif report.filename is not None:
        suffix = f" ({report.filename})"
    if report.text is not None and report.lineno is not None:
        yield from _error_text(report, int(report.lineno))
    yield f"{stype}: {report.msg or '<no detail available>'}{suffix}\n"


def _error_text(report: traceback.TracebackException, lineno: int) -> Iterator[str]:
    text = (report.text or "").encode("utf-8", "surrogateescape")
    text = text[: text.find(b"\0")] if b"\0" in text else text  # a C string ends at NUL
    offset = -1 if report.offset is None else report.offset
    end_lineno, end_offset = lineno, -1  # a subclass (IndentationError): one caret
    if report.exc_type is SyntaxError:
        if report.end_lineno is not None:
            end_lineno = int(report.end_lineno)
        if report.end_offset is not None:
            end_offset = report.end_offset
    if end_lineno > lineno:  # only the first line shows, highlighted to its end
        end_offset = len(text)
    end_offset = min(end_offset, len(text) + 1)
    carets = end_offset - offset if end_offset > 0 and end_offset > offset else 1
    offset -= 1  # 0-based
    body = text.lstrip(b" \t\f")
    offset -= len(text) - len(body)
    size = len(body) - body.endswith(b"\n")
    offset = min(offset, size)
    while (newline := body.find(b"\n")) != -1 and newline < offset:
        body, size, offset = body[newline + 1 :], size - newline - 1, offset - newline - 1
    end = "" if body[size : size + 1] == b"\n" else "\n"  # the line's own end, or one
    yield "    " + body.decode("utf-8", "surrogateescape") + end
    if offset >= 0:
        yield "    " + " " * offset + "^" * carets + "\n"


def _displayed_line(filename: str, lineno: int | None) -> str | None:
    """The source line as the interpreter reads it from the file: no line end, nothing
    stripped; None where it shows none."""
    if lineno is None or (filename != FILENAME and filename[:1] == "<" and filename[-1:] == ">"):
        return None
    text = linecache.getline(filename, lineno)
    if not text:
        return None
    # The file is read with universal newlines: a "\r\n" ends a line as "\n" does.
    return text.removesuffix("\n").removesuffix("\r")


def _carets(f: traceback.FrameSummary, line: str, leading: int) -> str:
    if f.colno is None or f.end_colno is None or f.end_lineno is None:
        return ""
    encoded = line.encode("utf-8")
    start = _char_offset(encoded, f.colno)
    end = _char_offset(encoded, f.end_colno)
    left = right = -1
    primary = secondary = "^"
    if f.lineno == f.end_lineno:
        anchors = _anchors(line[start:end])
        if anchors is not None:
            left, right, primary, secondary = anchors
            left, right = left + start, right + start
    else:
        # To the last non-whitespace character. The C code indexes the UTF-8 bytes with the
        # line's length in characters; a file run shows what that gives.
        i = len(line) - 1
        while i >= 0 and encoded[i] in _WHITESPACE:
            i -= 1
        end = i + 1
    special = left != -1 or right != -1
    if end - start == len(line) - leading and not special:
        return ""  # the primary character spans the whole line
    # Columns as printed: a wide character (East Asian "W" or "F") takes two.
    start, end = _display_width(line, start), _display_width(line, end)
    if special:
        left, right = _display_width(line, left), _display_width(line, right)
    carets = []
    for offset in range(leading - _INDENT + 1, end + 1):
        if offset <= start:
            carets.append(" ")
        elif special and left < offset <= right:
            carets.append(secondary)
        else:
            carets.append(primary)
    return "".join(carets) + "\n"


def _display_width(line: str, offset: int) -> int:
    """``_PyPegen_calculate_display_width``: the columns ``line[:offset]`` takes."""
    prefix = line[:offset]
    if prefix.isascii():
        return len(prefix)
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in prefix)


def _char_offset(encoded: bytes, byte_offset: int) -> int:
    """``_PyPegen_byte_offset_to_character_offset``: past the end, the terminating NUL of the
    C string counts as one more character."""
    past = min(byte_offset, len(encoded) + 1) - len(encoded)
    return len(encoded[:byte_offset].decode("utf-8", "replace")) + max(past, 0)


def _anchors(segment: str) -> tuple[int, int, str, str] | None:
    """Where the secondary carets go in the failing expression (``extract_anchors_from_line``),
    as character offsets into ``segment``, with the primary and secondary characters."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the display parses quietly
            tree = ast.parse(segment)
    except Exception:  # noqa: BLE001 - the display ignores any failure here
        return None
    if len(tree.body) != 1 or not isinstance(tree.body[0], ast.Expr):
        return None
    expr = tree.body[0].value
    seg = segment.encode("utf-8")
    chars = ("^", "^")
    if isinstance(expr, ast.BinOp):
        start, stop = expr.left.end_col_offset or 0, expr.right.col_offset
        left = right = -1
        for i in range(start, stop):
            if seg[i] in _WHITESPACE:
                continue
            left, right = i, i + 1
            if i + 1 < stop and seg[i + 1] not in _WHITESPACE:
                right += 1  # a two-character operator (//)
            if i + 1 < stop and seg[i] == ord(")"):
                continue  # the closing parenthesis of the left operand
            chars = ("~", "^")
            break
    elif isinstance(expr, ast.Subscript):
        left, right = expr.value.end_col_offset or 0, (expr.slice.end_col_offset or 0) + 1
        while left < len(seg) and seg[left] != ord("["):
            left += 1
        while right < len(seg) and seg[right] != ord("]"):
            right += 1
        if right < len(seg):
            right += 1
        chars = ("~", "^")
    else:
        return None
    return _char_offset(seg, left), _char_offset(seg, right), *chars


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
