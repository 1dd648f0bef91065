"""The JSON number grammar as a tiny state machine: -?(0|[1-9]\\d*)(\\.\\d+)?([eE][+-]?\\d+)?"""

from __future__ import annotations

# The state after a number's first character.
NUMBER_START = {"-": "sign", "0": "zero", **{d: "int" for d in "123456789"}}
# States in which the number may end (the next character is not part of it).
NUMBER_DONE = frozenset({"zero", "int", "frac", "exp_digits"})

_DIGIT = {"0": "0", **{d: "1-9" for d in "123456789"}}
_NEXT = {
    ("sign", "0"): "zero",
    ("sign", "1-9"): "int",
    ("zero", "."): "dot",
    ("zero", "e"): "exp",
    ("int", "0"): "int",
    ("int", "1-9"): "int",
    ("int", "."): "dot",
    ("int", "e"): "exp",
    ("dot", "0"): "frac",
    ("dot", "1-9"): "frac",
    ("frac", "0"): "frac",
    ("frac", "1-9"): "frac",
    ("frac", "e"): "exp",
    ("exp", "+-"): "exp_sign",
    ("exp", "0"): "exp_digits",
    ("exp", "1-9"): "exp_digits",
    ("exp_sign", "0"): "exp_digits",
    ("exp_sign", "1-9"): "exp_digits",
    ("exp_digits", "0"): "exp_digits",
    ("exp_digits", "1-9"): "exp_digits",
}


def _char_class(c: str) -> str:
    if c in _DIGIT:
        return _DIGIT[c]
    if c == "e" or c == "E":
        return "e"
    return "+-" if c == "+" or c == "-" else c


def number_step(state: str, c: str) -> str | None:
    """The state after ``c``, or None if ``c`` cannot continue the number."""
    return _NEXT.get((state, _char_class(c)))
