"""Cut a stream holding one JSON object (function-call arguments) into its key/value pairs.

A pair is a unit as soon as its value is finished: a string, object or array at its closing
character, a number or true/false/null at the next character (',', '}' or whitespace).
``unit.text`` runs from the key's opening quote to the value's end; ``unit.data`` is
``{"key": k, "value": v}``, both decoded with ``json.loads``. Duplicate keys give one unit each.

A small state machine checks the whole grammar (nested values included), so malformed input
raises ParseError in the very delta that makes it certain, with the offending offset.
Finished pairs are decoded with ``json.loads``; each character is looked at once.
When ``feed`` raises, units finished earlier in the same delta are not returned, and every
later ``feed``/``close`` raises the same error.
"""

from __future__ import annotations

import json
import re
from enum import Enum, auto

from .base import ParseError, Unit
from .json_number import NUMBER_DONE, NUMBER_START, number_step

_WHITESPACE = re.compile(r"[ \t\n\r]*")
_STRING_RUN = re.compile(r'[^"\\\x00-\x1f]*')
_STRING_STOP = re.compile(r'["\\\x00-\x1f]')  # what can end, escape or break a string
_HEX = frozenset("0123456789abcdefABCDEF")
_SIMPLE_ESCAPES = frozenset('"\\/bfnrt')
_LITERALS = {"t": "true", "f": "false", "n": "null"}


class _S(Enum):
    START = auto()  # before the top-level '{'
    KEY_OR_CLOSE = auto()  # just after '{'
    KEY = auto()  # after ',' in an object
    COLON = auto()
    VALUE = auto()
    VALUE_OR_CLOSE = auto()  # just after '['
    COMMA_OR_CLOSE = auto()
    STRING = auto()
    ESCAPE = auto()
    UNICODE = auto()  # inside \uXXXX
    NUMBER = auto()
    LITERAL = auto()
    DONE = auto()  # the top-level object is closed


class JsonArgsParser:
    """Units are the top-level key/value pairs of one JSON object."""

    name = "json"
    # Inside a string (most tokens of a long argument) only a quote, a backslash or a control
    # character can matter; elsewhere any character may close a field or be invalid.
    wake: re.Pattern[str] | None = None

    def __init__(self) -> None:
        self._state = _S.START
        self._stack: list[str] = []  # open containers, '{' or '['
        self._is_key = False  # the string being scanned is an object key
        self._hex_left = 0
        self._number = ""  # number_step state
        self._literal = ""
        self._literal_at = 0
        # Offsets of the top-level pair being scanned (pair_start is None between pairs).
        self._pair_start: int | None = None
        self._key_end = 0
        self._value_start = 0
        self._offset = 0  # stream offset of the current delta
        self._chunks: list[str] = []  # stream text from _base on
        self._base = 0
        self._joined: str | None = None
        self._error: ParseError | None = None
        self._out: list[Unit] = []

    def feed(self, delta: str) -> list[Unit]:
        if self._error is not None:
            raise self._error
        self._chunks.append(delta)
        self._joined = None
        i = 0
        while i < len(delta):
            i = self._step(delta, i)
        self._offset += len(delta)
        self._trim()
        self.wake = _STRING_STOP if self._state is _S.STRING else None
        out, self._out = self._out, []
        return out

    @property
    def done(self) -> bool:
        """The top-level object is closed: the arguments are complete (only whitespace may
        follow). Known in the very delta that holds the closing '}'."""
        return self._state is _S.DONE

    def close(self) -> list[Unit]:
        if self._error is not None:
            raise self._error
        if self._state is not _S.DONE:
            self._error = ParseError(
                f"truncated JSON object: the stream ended at offset {self._offset} "
                "before the closing '}'"
            )
            raise self._error
        return []

    def _fail(self, message: str, pos: int, char: str) -> ParseError:
        self._error = ParseError(f"invalid JSON at offset {pos}: {message}, got {char!r}")
        return self._error

    def _step(self, s: str, i: int) -> int:
        state = self._state
        if state is _S.STRING:
            return self._in_string(s, i)
        if state is _S.ESCAPE or state is _S.UNICODE:
            self._in_escape(s[i], self._offset + i)
            return i + 1
        if (state is _S.NUMBER or state is _S.LITERAL) and self._in_bare(s[i], self._offset + i):
            return i + 1
        i = m.end() if (m := _WHITESPACE.match(s, i)) else i  # a "*" run: never None
        if i < len(s):
            self._structural(s[i], self._offset + i)
            i += 1
        return i

    def _in_string(self, s: str, i: int) -> int:
        j = m.end() if (m := _STRING_RUN.match(s, i)) else i  # a "*" run: never None
        if j == len(s):
            return j
        c, pos = s[j], self._offset + j
        if c == '"':
            self._string_end(pos + 1)
        elif c == "\\":
            self._state = _S.ESCAPE
        else:
            raise self._fail("control character in a string", pos, c)
        return j + 1

    def _in_escape(self, c: str, pos: int) -> None:
        if self._state is _S.UNICODE:
            if c not in _HEX:
                raise self._fail("bad \\u escape, expected a hex digit", pos, c)
            self._hex_left -= 1
            if not self._hex_left:
                self._state = _S.STRING
        elif c == "u":
            self._state, self._hex_left = _S.UNICODE, 4
        elif c in _SIMPLE_ESCAPES:
            self._state = _S.STRING
        else:
            raise self._fail("invalid escape", pos, "\\" + c)

    def _in_bare(self, c: str, pos: int) -> bool:
        """Take ``c`` into the number/literal being scanned, or end the value before it."""
        if self._state is _S.NUMBER:
            step = number_step(self._number, c)
            if step is not None:
                self._number = step
                return True
            if self._number not in NUMBER_DONE:
                raise self._fail("malformed number", pos, c)
        elif self._literal_at < len(self._literal):
            if c != self._literal[self._literal_at]:
                raise self._fail(f"malformed literal, expected {self._literal!r}", pos, c)
            self._literal_at += 1
            return True
        self._value_end(pos)
        return False

    def _structural(self, c: str, pos: int) -> None:
        state = self._state
        if state is _S.START:
            if c != "{":
                raise self._fail("the arguments must be a JSON object, expected '{'", pos, c)
            self._stack.append(c)
            self._state = _S.KEY_OR_CLOSE
        elif state is _S.DONE:
            raise self._fail("trailing data after the closing '}'", pos, c)
        elif state is _S.COLON:
            if c != ":":
                raise self._fail("expected ':' after a key", pos, c)
            self._state = _S.VALUE
        elif state is _S.COMMA_OR_CLOSE:
            if c != ",":
                self._close(c, pos)
            else:
                self._state = _S.KEY if self._stack[-1] == "{" else _S.VALUE
        elif state is _S.KEY or state is _S.KEY_OR_CLOSE:
            self._key_or_close(c, pos)
        elif state is _S.VALUE_OR_CLOSE and c == "]":
            self._close(c, pos)
        else:
            self._start_value(c, pos)

    def _key_or_close(self, c: str, pos: int) -> None:
        if c == "}" and self._state is _S.KEY_OR_CLOSE:
            self._close(c, pos)
        elif c == '"':
            if len(self._stack) == 1:
                self._pair_start = pos
            self._state, self._is_key = _S.STRING, True
        else:
            raise self._fail("expected a key string", pos, c)

    def _start_value(self, c: str, pos: int) -> None:
        if len(self._stack) == 1:
            self._value_start = pos
        if c == '"':
            self._state, self._is_key = _S.STRING, False
        elif c == "{" or c == "[":
            self._stack.append(c)
            self._state = _S.KEY_OR_CLOSE if c == "{" else _S.VALUE_OR_CLOSE
        elif c in NUMBER_START:
            self._state, self._number = _S.NUMBER, NUMBER_START[c]
        elif c in _LITERALS:
            self._state, self._literal, self._literal_at = _S.LITERAL, _LITERALS[c], 1
        else:
            raise self._fail("expected a value", pos, c)

    def _close(self, c: str, pos: int) -> None:
        want = "}" if self._stack[-1] == "{" else "]"
        if c != want:  # only reachable after a value: the other callers pass the right closer
            raise self._fail(f"expected ',' or {want!r}", pos, c)
        self._stack.pop()
        if self._stack:
            self._value_end(pos + 1)
        else:
            self._state = _S.DONE

    def _string_end(self, end: int) -> None:
        if self._is_key:
            if len(self._stack) == 1:
                self._key_end = end
            self._state = _S.COLON
        else:
            self._value_end(end)

    def _value_end(self, end: int) -> None:
        self._state = _S.COMMA_OR_CLOSE
        if len(self._stack) == 1:
            self._emit(end)

    def _emit(self, end: int) -> None:
        start = self._pair_start
        assert start is not None  # noqa: S101 - only called inside a pair
        if self._joined is None:
            self._joined = "".join(self._chunks)
            self._chunks = [self._joined]
        text = self._joined[start - self._base : end - self._base]
        try:
            key = json.loads(text[: self._key_end - start])
            value = json.loads(text[self._value_start - start :])
        except (ValueError, RecursionError) as exc:  # RecursionError: absurdly deep nesting
            raise self._fail(f"cannot decode the value ({exc})", start, text[:20]) from None
        self._out.append(Unit(text, start, end, {"key": key, "value": value}))
        self._pair_start = None

    def _trim(self) -> None:
        """Keep only the text of the pair in progress: memory and joins stay O(pair)."""
        keep = self._offset if self._pair_start is None else self._pair_start
        drop = keep - self._base
        chunks = self._chunks
        whole = 0
        while whole < len(chunks) and len(chunks[whole]) <= drop:
            drop -= len(chunks[whole])
            whole += 1
        del chunks[:whole]
        if drop and chunks:
            chunks[0] = chunks[0][drop:]
        self._base = keep
