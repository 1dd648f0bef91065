"""The program decoded so far, compiled one top-level statement at a time as if compiled whole.

Three things make a statement compiled alone differ from the same statement in the whole
program, and each is handled here:

- line numbers: the statement is compiled behind as many blank lines as precede it, so
  tracebacks, warnings and ``inspect`` name the lines of the whole program (newlines rather
  than ``ast.increment_lineno``, so that syntax errors carry the right line too);
- ``from __future__`` imports: their flags apply to every later statement, and once the
  program's head (a docstring, then future imports) is over they are a SyntaxError. After the
  head a statement is compiled behind a ``pass`` on its first blank line: the compiler then
  rejects a late future import itself, and a leading string is no module docstring;
- whole-program compile errors: a whole compile reports the parser's first error before any
  of the compiler's (``'return' outside function``), and a module-level ``global`` can
  clash with an earlier statement. ``whole_error`` recompiles the program when either may
  matter, so the error reported is the one a whole compile gives.
"""

from __future__ import annotations
import __future__

import ast
import contextlib
import types
import warnings
from collections.abc import Iterator

from conveyor_sgl.tools.python_exec import FILENAME, register_source, split_lines

_FUTURE_FLAGS = 0
for _name in __future__.all_feature_names:
    _FUTURE_FLAGS |= getattr(__future__, _name).compiler_flag


class ProgramSource:
    def __init__(self) -> None:
        self.lines: list[str] = []  # the program so far; lines between statements are blank
        self.flags = 0  # __future__ flags in force for the statements to come
        self.warnings: list[str] = []  # compile-time warnings, formatted, in program order
        self._head = True  # so far only a docstring and __future__ imports
        self._started = False  # a statement was seen (a later string is no docstring)
        self._has_global = False
        # A whole compile happens before the program runs: the program's own warning filters
        # (``simplefilter("error")`` in its first line) must not apply to its later lines.
        self._filters = list(warnings.filters)
        register_source(self.lines)

    def add(self, text: str, lineno: int | None) -> int:
        """Place a statement at its line in the program; return that line (1-based)."""
        if self.lines and not self.lines[-1].endswith("\n"):
            self.lines[-1] += "\n"
        if lineno is None or lineno < 1:  # a parser without line numbers: assume contiguous
            lineno = len(self.lines) + 1
        self.lines.extend(["\n"] * (lineno - 1 - len(self.lines)))
        self.lines.extend(split_lines(text))
        self._has_global = self._has_global or "global" in text
        return lineno

    def compile(self, text: str, lineno: int) -> types.CodeType:
        """Compile one statement as part of the whole program; raises what compile raises."""
        guarded = not self._head or self._leaves_head(text)
        pad = "\n" * (lineno - 1)
        if guarded and pad:
            pad = "pass" + pad
        with self._recorded_warnings() as caught:
            code = compile(pad + text, FILENAME, "exec", flags=self.flags, dont_inherit=True)
        self.warnings.extend(map(_format_warning, caught))
        self.flags |= code.co_flags & _FUTURE_FLAGS
        return code

    def whole_error(self, unit_error: Exception | None) -> tuple[Exception, str] | None:
        """The error a whole compile of the program gives, with the warnings it prints first.

        Recompiles only when a statement failed to compile or a ``global`` may clash; a
        failed statement whose program compiles whole (a parser that cut a statement in two)
        is reported as it is.
        """
        if unit_error is None and not self._has_global:
            return None
        text = "".join(self.lines)
        program: str | bytes = text
        with contextlib.suppress(UnicodeEncodeError):
            # As ``python program.py`` reads its file: the parser's error columns then count
            # bytes, as a file run shows them (a str compile counts characters).
            program = text.encode("utf-8")
        with self._recorded_warnings() as caught:
            try:
                compile(program, FILENAME, "exec", dont_inherit=True)
            except Exception as exc:  # noqa: BLE001 - SyntaxError, or ValueError for a null byte
                return exc, "".join(map(_format_warning, caught))
        if unit_error is None:
            return None
        return unit_error, "".join(self.warnings)

    @contextlib.contextmanager
    def _recorded_warnings(self) -> Iterator[list[warnings.WarningMessage]]:
        with warnings.catch_warnings(record=True) as caught:
            # The C side reads the module's list each time; the compiler's warnings use no
            # registry, so no _filters_mutated() is needed.
            warnings.filters[:] = self._filters  # type: ignore[index]  # a list; stubs: Sequence
            yield caught

    def _leaves_head(self, text: str) -> bool:
        """Track the program's head; True if this statement must be compiled as after it."""
        try:
            flags = self.flags | ast.PyCF_ONLY_AST
            body = compile(text, FILENAME, "exec", flags=flags, dont_inherit=True).body
        except Exception:  # noqa: BLE001
            return False  # the real compile that follows reports it, at the right line
        docstring_ok = not self._started
        self._started = self._started or bool(body)
        if body and _is_string(body[0]) and not docstring_ok:
            self._head = False
            return True
        self._head = all(
            _is_future(stmt) or (i == 0 and docstring_ok and _is_string(stmt))
            for i, stmt in enumerate(body)
        )
        return False


def _is_future(stmt: ast.stmt) -> bool:
    return isinstance(stmt, ast.ImportFrom) and stmt.module == "__future__"


def _is_string(stmt: ast.stmt) -> bool:
    return (
        isinstance(stmt, ast.Expr)
        and isinstance(stmt.value, ast.Constant)
        and isinstance(stmt.value.value, str)
    )


def _format_warning(w: warnings.WarningMessage) -> str:
    # The text warnings.showwarning would write to stderr.
    return warnings.formatwarning(w.message, w.category, w.filename, w.lineno, w.line)
