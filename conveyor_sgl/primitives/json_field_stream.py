"""Stream the decoded text of one string field of a JSON object while the JSON arrives.

A tool whose argument is code (``{"code": "x = 1\\ny = 2\\n"}``) should see ``x = 1`` run
while the model is still writing ``y = 2``: the characters of that string field, un-escaped,
go to the tool's own parser as they arrive. Chunks may split the document anywhere, inside
an escape (``\\`` | ``n``) or a ``\\uXXXX`` sequence included, and the decoded text is the
same as ``json.loads(document)[field]``:

    reader = JsonFieldStream("code")
    for chunk in chunks:
        text = reader.feed(chunk)   # newly decoded characters of "code" (maybe "")
    reader.done                     # the field's closing quote has arrived

Only a top-level field counts (a ``"code"`` key nested in another value is skipped); the
first one wins (it has already streamed when a duplicate could appear). The rest of the
document is scanned just enough to find that field, not validated: the tool call's whole
arguments are still there to check afterwards.
"""

from __future__ import annotations

import re
from enum import Enum, auto

from conveyor_sgl.errors import ConveyorError

_PLAIN_RUN = re.compile(r'[^"\\\x00-\x1f]*')
_WHITESPACE = " \t\n\r"
_ESCAPES = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}
_HEX = frozenset("0123456789abcdefABCDEF")


class FieldStreamError(ConveyorError, ValueError):
    """The arguments cannot hold the field as a string (or are not JSON there)."""


class StringDecoder:
    """Decodes the body of one JSON string (after its opening quote), chunk by chunk.

    A high surrogate escape is held back until the next characters show whether a low one
    follows (``\\ud83d\\ude00`` is one character), which is what ``json.loads`` does.
    """

    def __init__(self) -> None:
        self.closed = False
        self._escape: str | None = None  # an escape in progress: "\\", "\\u", "\\u12", ...
        self._high: str | None = None  # a decoded high surrogate waiting for its partner

    def feed(self, s: str, i: int) -> tuple[str, int]:
        """Decode from ``s[i]`` up to the closing quote or the end of ``s``."""
        out: list[str] = []
        while i < len(s) and not self.closed:
            if self._escape is not None:
                i = self._escape_step(s, i, out)
                continue
            j = m.end() if (m := _PLAIN_RUN.match(s, i)) else i  # a "*" run: never None
            if j > i:
                self._flush_high(out)
                out.append(s[i:j])
            if j == len(s):
                return "".join(out), j
            c = s[j]
            if c == "\\":
                self._escape = "\\"
            elif c == '"':
                self._flush_high(out)
                self.closed = True
            else:
                raise FieldStreamError(f"control character {c!r} inside a JSON string")
            i = j + 1
        return "".join(out), i

    def _escape_step(self, s: str, i: int, out: list[str]) -> int:
        c, seq = s[i], self._escape or ""
        if seq == "\\":
            if c == "u":
                self._escape = "\\u"
                return i + 1
            if c not in _ESCAPES:
                raise FieldStreamError(f"invalid escape {seq + c!r} in a JSON string")
            self._flush_high(out)
            out.append(_ESCAPES[c])
            self._escape = None
            return i + 1
        if c not in _HEX:
            raise FieldStreamError(f"invalid escape {seq + c!r} in a JSON string")
        seq += c
        if len(seq) < 6:
            self._escape = seq
            return i + 1
        self._escape = None
        self._code_point(int(seq[2:], base=16), out)  # seq is \\uXXXX: hex after the \\u
        return i + 1

    def _code_point(self, code: int, out: list[str]) -> None:
        if self._high is not None and 0xDC00 <= code <= 0xDFFF:
            high, self._high = ord(self._high), None
            out.append(chr(0x10000 + ((high - 0xD800) << 10) + (code - 0xDC00)))
            return
        self._flush_high(out)
        if 0xD800 <= code <= 0xDBFF:
            self._high = chr(code)
        else:
            out.append(chr(code))

    def _flush_high(self, out: list[str]) -> None:
        # A lone high surrogate stays as it is, as json.loads keeps it.
        if self._high is not None:
            out.append(self._high)
            self._high = None


class _S(Enum):
    SCAN = auto()  # outside strings, looking for the field's key at depth 1
    STRING = auto()  # inside some other string (a key or a value)
    KEY = auto()  # inside a top-level key
    COLON = auto()  # after the field's key
    VALUE = auto()  # after the colon: the value must be a string
    FIELD = auto()  # inside the field's string value
    DONE = auto()  # the field's closing quote has arrived


class JsonFieldStream:
    """The decoded characters of top-level string field ``field``, as the JSON arrives."""

    def __init__(self, field: str) -> None:
        self.field = field
        self._state = _S.SCAN
        self._depth = 0  # open containers
        self._key_next = False  # the next string at depth 1 is a key
        self._decoder = StringDecoder()  # the string being read (key, other, or the field)
        self._key: list[str] = []

    @property
    def done(self) -> bool:
        return self._state is _S.DONE

    @property
    def started(self) -> bool:
        """The field's string value has begun."""
        return self._state in (_S.FIELD, _S.DONE)

    def feed(self, chunk: str) -> str:
        """Take the next chunk of the JSON text; return newly decoded field characters."""
        out: list[str] = []
        i = 0
        while i < len(chunk) and self._state is not _S.DONE:
            i = self._step(chunk, i, out)
        return "".join(out)

    def close(self) -> None:
        """The JSON text has ended: raise if the field never finished."""
        if self._state is _S.DONE:
            return
        if self._state is _S.FIELD:
            raise FieldStreamError(f"the string field {self.field!r} was cut off")
        raise FieldStreamError(f"the arguments have no string field {self.field!r}")

    def _step(self, s: str, i: int, out: list[str]) -> int:
        state = self._state
        if state in (_S.STRING, _S.KEY, _S.FIELD):
            text, i = self._decoder.feed(s, i)
            if state is _S.FIELD:
                out.append(text)
            elif state is _S.KEY:
                self._key.append(text)
            if self._decoder.closed:
                self._string_closed(state)
            return i
        c = s[i]
        if c in _WHITESPACE:
            return i + 1
        if state is _S.COLON:
            self._expect(c == ":", "':' after the key", c)
            self._state = _S.VALUE
        elif state is _S.VALUE:
            self._expect(c == '"', "a string value", c)
            self._open_string(_S.FIELD)
        else:
            self._structural(c)
        return i + 1

    def _structural(self, c: str) -> None:
        if c == '"':
            is_key = self._depth == 1 and self._key_next
            self._open_string(_S.KEY if is_key else _S.STRING)
            self._key_next = False
        elif c in "{[":
            self._depth += 1
            self._key_next = self._depth == 1 and c == "{"
        elif c in "}]":
            self._depth -= 1
        elif c == "," and self._depth == 1:
            self._key_next = True
        elif self._depth == 0:
            raise FieldStreamError(f"the arguments are not a JSON object: got {c!r}")

    def _open_string(self, state: _S) -> None:
        self._state = state
        self._decoder = StringDecoder()
        self._key.clear()

    def _string_closed(self, state: _S) -> None:
        if state is _S.FIELD:
            self._state = _S.DONE
        elif state is _S.KEY and "".join(self._key) == self.field:
            self._state = _S.COLON
        else:
            self._state = _S.SCAN

    def _expect(self, ok: bool, what: str, got: str) -> None:
        if not ok:
            raise FieldStreamError(f"field {self.field!r}: expected {what}, got {got!r}")
