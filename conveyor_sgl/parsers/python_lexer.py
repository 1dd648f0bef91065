"""Just enough of Python's tokenizer to know where a logical line ends, in one pass.

``tokenize`` cannot resume mid-stream: asking it "is this logical line finished?" after each
new physical line re-reads the whole pending line, which is O(lines^2) for a long bracketed
literal or triple-quoted string. This scanner keeps the three things that continue a logical
line (open brackets, an open string, a trailing backslash) across calls and reads every
character once. It follows the C tokenizer on broken input too: an unterminated one-quote
string ends at its line's end, unmatched closing brackets are ignored.
"""

from __future__ import annotations

import re

# Characters that can change the lexical state outside a string.
_SPECIAL = re.compile(r"[\"'#\\()\[\]{}]")
# Inside a string only a backslash, the quote character or (one-quote strings) a newline matter.
_STRING_STOP = {
    "'": re.compile(r"[\\'\n]"),
    '"': re.compile(r'[\\"\n]'),
    "'''": re.compile(r"[\\']"),
    '"""': re.compile(r'[\\"]'),
}


class LogicalLineLexer:
    """Feed physical lines (each ending in "\\n", except a stream's last one) to ``scan``."""

    def __init__(self) -> None:
        self.depth = 0
        self.quote: str | None = None
        self.backslash = False
        # Last significant character of the logical line (outside strings and comments):
        # a header such as ``if x:`` or ``match y:`` ends with ':'.
        self.last = ""

    @property
    def open(self) -> bool:
        """True while the current logical line goes on past the lines scanned so far."""
        return self.depth > 0 or self.quote is not None or self.backslash

    def start(self) -> None:
        """A new logical line begins (only called when ``open`` is False)."""
        self.last = ""

    def scan(self, line: str) -> None:
        if line.endswith("\r\n"):  # Python reads CRLF as one newline, also after a backslash
            line = line[:-2] + "\n"
        self.backslash = False
        i, n = 0, len(line)
        while i < n:
            if self.quote is not None:
                i = self._scan_string(line, i)
                continue
            m = _SPECIAL.search(line, i)
            j = n if m is None else m.start()
            code = line[i:j].rstrip()
            if code:
                self.last = code[-1]
            if m is None:
                return
            i = self._scan_special(line, j)

    def _scan_special(self, line: str, j: int) -> int:
        c = line[j]
        if c == "#":
            return len(line)
        if c == "\\":
            if line[j + 1 :] in ("", "\n"):
                self.backslash = True
                return len(line)
            self.last = c
            return j + 1
        if c in "([{":
            self.depth += 1
        elif c in ")]}":
            self.depth = max(0, self.depth - 1)
        else:
            self.quote = c * 3 if line.startswith(c * 3, j) else c
            return j + len(self.quote)
        self.last = c
        return j + 1

    def _scan_string(self, line: str, i: int) -> int:
        quote = self.quote
        assert quote is not None  # noqa: S101 - only called inside a string
        m = _STRING_STOP[quote].search(line, i)
        if m is None:
            return len(line)
        j = m.start()
        c = line[j]
        if c == "\\":  # escapes the next character, a newline included, also in raw strings
            return j + 2
        if c == "\n":  # unterminated one-quote string: a SyntaxError, but the line ends here
            self.quote = None
            return j + 1
        if line.startswith(quote, j):
            self.quote = None
            self.last = c
            return j + len(quote)
        return j + 1
