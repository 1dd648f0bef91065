"""Cut a stream of SQL into statements: for tools that run each statement as it arrives.

A statement ends at the first ``;`` after which ``sqlite3.complete_statement`` says the text
is complete, so a ``;`` inside a string, a quoted name, a comment or a trigger body does not
cut it. SQLite's own tokenizer decides, so the cut is the one SQLite would make.
"""

from __future__ import annotations

import re
import sqlite3

from .base import ParseError, Unit

# Whitespace and comments before a statement are not part of it (nor a statement alone).
_LEADING = re.compile(r"(?:\s+|--[^\n]*(?:\n|\Z)|/\*.*?\*/)*", re.DOTALL)


class SqlStatementParser:
    """Each complete SQL statement, from its first token to its ``;``, is a unit.

    Empty statements (a lone ``;``, comments only) are skipped. ``close()`` emits a last
    statement without its ``;`` and raises ParseError if it can never complete (an open
    string, a trigger without END). ``data`` is ``{"index": n}``, 0-based among units.
    """

    name = "sql"
    # A statement is finished only by a ';' (feed raises nothing).
    wake: re.Pattern[str] | None = re.compile(";")

    def __init__(self) -> None:
        self._buffer = ""  # the stream after the last unit
        self._base = 0  # stream offset of _buffer[0]
        self._scanned = 0  # every ';' before this buffer index was already checked
        self._count = 0

    def feed(self, delta: str) -> list[Unit]:
        self._buffer += delta
        out: list[Unit] = []
        while (semicolon := self._buffer.find(";", self._scanned)) >= 0:
            self._scanned = semicolon + 1
            if _complete(self._buffer[: semicolon + 1]):
                self._cut(semicolon + 1, out)
        self._scanned = len(self._buffer)
        return out

    def close(self) -> list[Unit]:
        out: list[Unit] = []
        rest = self._buffer
        lead = m.end() if (m := _LEADING.match(rest)) else 0  # a "*" run: never None
        if not rest[lead:].strip():
            return out
        # The newline ends a trailing "--" comment, which would otherwise swallow the ';'.
        if not _complete(rest + "\n;"):
            raise ParseError(f"unterminated SQL statement at offset {self._base}: {rest.strip()!r}")
        self._cut(len(rest.rstrip()), out)
        return out

    def _cut(self, end: int, out: list[Unit]) -> None:
        text = self._buffer[:end]
        lead = m.end() if (m := _LEADING.match(text)) else 0  # a "*" run: never None
        if text[lead:].strip() not in ("", ";"):
            start = self._base + lead
            out.append(Unit(text[lead:], start, self._base + end, {"index": self._count}))
            self._count += 1
        self._buffer = self._buffer[end:]
        self._base += end
        self._scanned = 0


def _complete(text: str) -> bool:
    """``sqlite3.complete_statement``, with text SQLite cannot take as a ParseError."""
    try:
        return sqlite3.complete_statement(text)
    except ValueError as e:  # a NUL character, or a lone surrogate (not UTF-8)
        raise ParseError(f"not SQL text: {e}") from None
