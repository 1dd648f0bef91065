"""Cut a stream into lines: for tools that act line by line (a shell, a planner)."""

from __future__ import annotations

import re

from .base import Unit


class LineParser:
    """Each line ending in "\\n" is a unit (newline included); blank lines are skipped.

    ``close()`` emits a last unterminated line unless it is blank. ``data`` is
    ``{"lineno": n}``, the 1-based line number in the stream (skipped lines count).
    """

    name = "line"
    wake: re.Pattern[str] | None = re.compile("\n")  # a line is finished only by its newline

    def __init__(self) -> None:
        self._partial: list[str] = []  # pieces of the incomplete last line
        self._start = 0  # stream offset of the incomplete line
        self._lineno = 1

    def feed(self, delta: str) -> list[Unit]:
        if "\n" not in delta:
            self._partial.append(delta)  # the common case, one token inside a line
            return []
        out: list[Unit] = []
        begin = 0
        while (newline := delta.find("\n", begin)) >= 0:
            self._partial.append(delta[begin : newline + 1])
            self._finish_line(out)
            begin = newline + 1
        if begin < len(delta):
            self._partial.append(delta[begin:])
        return out

    def close(self) -> list[Unit]:
        out: list[Unit] = []
        if self._partial:
            self._finish_line(out)
        return out

    def _finish_line(self, out: list[Unit]) -> None:
        line = "".join(self._partial)
        self._partial.clear()
        end = self._start + len(line)
        if line.strip():
            out.append(Unit(line, self._start, end, {"lineno": self._lineno}))
        self._start = end
        self._lineno += 1
