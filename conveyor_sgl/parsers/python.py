"""Cut a stream of Python source into finished top-level statements.

Rules (the same for code that compiles and code that does not, so that a SyntaxError is
reported by the Python tool, never by the parser):

* A simple statement is finished when its logical line ends (newline outside brackets and
  strings, no trailing backslash): ``x = 1\\n`` is a unit on that newline.
* A logical line opens a block when its first word is a compound keyword (``if``, ``for``,
  ``while``, ``try``, ``with``, ``def``, ``class``, ``async``), or it ends with ':' (``match x:``,
  and broken headers). Decorator lines join the next logical line. A block is finished by the
  first line at column 0 that is not blank, not a comment and not a clause (``else``, ``elif``,
  ``except``, ``finally``, and ``case ...:`` in a match). That line's first word decides it, so
  the block is emitted as soon as that word is known, before the rest of the line arrives.
* Blank and comment lines join the next statement's unit; left over at close(), they are
  dropped. Units are contiguous: each starts where the previous ended.

Lines end at "\\n" (LF or CRLF). Each unit's ``data`` is ``{"lineno": n}``, the 1-based line of
``unit.start`` in the stream, so a tool can report tracebacks against the whole program.
The cost is linear: each character is scanned once, each line is examined once.
"""

from __future__ import annotations

import re
from enum import Enum, auto

from .base import Unit
from .python_lexer import LogicalLineLexer

_WORD = re.compile(r"[^\W\d]\w*")
_NEWLINE = re.compile("\n")
# First words that open a block even when the line does not end with ':' (``if x: y``).
_COMPOUND = frozenset({"if", "for", "while", "try", "with", "def", "class", "async"})
_CLAUSES = frozenset({"else", "elif", "except", "finally"})
_CLAUSES_IN_MATCH = _CLAUSES | {"case"}
# Longer than any clause keyword: enough of a line to know its first word.
_HEAD = 16


class _Kind(Enum):
    IDLE = auto()  # only blank/comment lines pending (or a first logical line still open)
    DECORATORS = auto()  # decorator lines: the next logical line belongs to them
    BLOCK = auto()  # a compound statement, open until a column-0 line that is not a clause


class _Verdict(Enum):
    END = auto()  # the line starts a new statement: the open block is finished
    CLAUSE = auto()  # else/elif/except/finally: the block goes on
    CASE = auto()  # 'case' in a match: a clause only if its logical line ends with ':'
    WAIT = auto()  # the line's first word is not known yet


def _is_filler(line: str) -> bool:
    stripped = line.strip()
    return not stripped or stripped[0] == "#"


def _first_word(line: str) -> str:
    stripped = line.lstrip()
    if stripped.startswith("@"):
        return "@"
    m = _WORD.match(stripped)
    return m.group() if m else ""


def _verdict(head: str, complete: bool, in_match: bool) -> _Verdict:
    """Judge a column-0 line that is not blank or a comment, from its first characters.

    ``complete`` says the whole line is there; otherwise the answer may be WAIT, and a
    non-WAIT answer is the one the complete line would get (units must not depend on deltas).
    """
    m = _WORD.match(head)
    if m is None:
        return _Verdict.END
    word = m.group()
    if not complete and m.end() == len(head):
        clauses = _CLAUSES_IN_MATCH if in_match else _CLAUSES
        return _Verdict.WAIT if any(k.startswith(word) for k in clauses) else _Verdict.END
    if word in _CLAUSES:
        return _Verdict.CLAUSE
    return _Verdict.CASE if in_match and word == "case" else _Verdict.END


class PythonStatementParser:
    """Units are finished top-level statements; never raises on any input."""

    name = "python"

    def __init__(self) -> None:
        self._lex = LogicalLineLexer()
        self._kind = _Kind.IDLE
        self._lines: list[str] = []  # complete lines of the pending unit
        # lines[:content_end] end with a finished logical line; the rest is blank/comment.
        self._content_end = 0
        self._case_cut: int | None = None  # where to cut if a pending 'case' line is no clause
        self._in_match = False
        self._first_word = ""  # of the current logical line
        self._partial: list[str] = []  # pieces of the incomplete last line
        self._head = ""  # its first _HEAD characters
        self._start = 0  # stream offset of lines[0]
        self._lineno = 1  # line number of lines[0]
        self._out: list[Unit] = []
        # A newline while only one can finish a unit; None while the first characters of a
        # new column-0 line may end the open block (see ``_peeking``). Kept after each feed.
        self.wake: re.Pattern[str] | None = _NEWLINE

    def feed(self, delta: str) -> list[Unit]:
        if self.wake is not None and "\n" not in delta:
            self._partial.append(delta)  # the common case, one token inside a line: no work
            return []
        begin = 0
        while (newline := delta.find("\n", begin)) >= 0:
            self._partial.append(delta[begin : newline + 1])
            self._take_line()
            begin = newline + 1
        if begin < len(delta):
            rest = delta[begin:]
            self._partial.append(rest)
            if len(self._head) < _HEAD:
                self._head += rest[: _HEAD - len(self._head)]
            self._peek()
        self.wake = None if self._peeking() else _NEWLINE
        return self._flush()

    def close(self) -> list[Unit]:
        if self._partial:
            self._take_line()
        if self._lex.open:  # an unfinished bracket/string: hand it over, the tool reports it
            end = len(self._lines)
        else:
            end = 0 if self._kind is _Kind.IDLE else self._content_end
        if end:
            self._emit(end)
        self._lines.clear()
        self._kind = _Kind.IDLE
        self._lex = LogicalLineLexer()
        self.wake = _NEWLINE
        return self._flush()

    def _take_line(self) -> None:
        line = "".join(self._partial)
        self._partial.clear()
        self._head = ""
        self._on_line(line)

    def _on_line(self, line: str) -> None:
        self._lines.append(line)
        if self._lex.open:
            self._scan(line)
            return
        if _is_filler(line):
            return
        if self._kind is _Kind.BLOCK and not line[0].isspace():
            verdict = _verdict(line, True, self._in_match)
            if verdict is _Verdict.END:
                self._end_block()
            elif verdict is _Verdict.CASE:
                self._case_cut = self._content_end
        self._first_word = _first_word(line)
        self._lex.start()
        self._scan(line)

    def _peeking(self) -> bool:
        """Whether a delta inside the current line may still end the open block: only while
        the block is open and the line's first word is not decided (see ``_peek``)."""
        if self._kind is not _Kind.BLOCK or self._lex.open or len(self._head) >= _HEAD:
            return False
        head = self._head  # an indented or comment line never ends the block early
        return not head or not (head[0].isspace() or head[0] == "#")

    def _peek(self) -> None:
        """Finish an open block as soon as the new column-0 line's first word rules out a clause."""
        if self._kind is not _Kind.BLOCK or self._lex.open:
            return
        head = self._head
        if head[0].isspace() or head[0] == "#":  # indented, blank or comment: decided later
            return
        if _verdict(head, False, self._in_match) is _Verdict.END:
            self._end_block()

    def _scan(self, line: str) -> None:
        self._lex.scan(line)
        if not self._lex.open:
            self._end_logical()

    def _end_logical(self) -> None:
        ends_colon = self._lex.last == ":"
        if self._kind is _Kind.BLOCK:
            cut, self._case_cut = self._case_cut, None
            if cut is None or ends_colon:
                self._content_end = len(self._lines)
                return
            # 'case = 3' after a match: a new statement, not a case clause.
            self._emit(cut)
            self._kind = _Kind.IDLE
        self._end_header(ends_colon)

    def _end_header(self, ends_colon: bool) -> None:
        word = self._first_word
        self._content_end = len(self._lines)
        if word == "@":
            self._kind = _Kind.DECORATORS
        elif word in _COMPOUND or ends_colon:
            self._kind = _Kind.BLOCK
            self._in_match = word == "match"
        else:
            self._emit(len(self._lines))
            self._kind = _Kind.IDLE

    def _end_block(self) -> None:
        self._emit(self._content_end)
        self._kind = _Kind.IDLE

    def _emit(self, count: int) -> None:
        text = "".join(self._lines[:count])
        del self._lines[:count]
        end = self._start + len(text)
        self._out.append(Unit(text, self._start, end, {"lineno": self._lineno}))
        self._start = end
        self._lineno += count
        self._content_end = 0

    def _flush(self) -> list[Unit]:
        out, self._out = self._out, []
        return out
