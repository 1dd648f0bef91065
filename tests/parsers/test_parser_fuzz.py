"""Fuzzing every registered parser: arbitrary text, arbitrary chunking.

Properties, for each parser in ``PARSERS`` (so a parser added later is fuzzed too):
- the only exception is ``ParseError``;
- the outcome does not depend on how the text is cut into deltas: the same units (text,
  offsets, data), or a ``ParseError`` either way;
- units tile the stream in order: ``text == stream[start:end]``, never overlapping;
- ``wake``: a delta the parser's wake pattern does not match finishes no unit, raises nothing
  so the session may hold it back (``ToolSession.feed_text``) and get the same units.
"""

from __future__ import annotations

import itertools

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conveyor_sgl.parsers import PARSERS, ParseError, Unit, make_parser

pytestmark = pytest.mark.timeout(120)

# Tokens that reach deep into the parsers' states: brackets, quotes, escapes, comments,
# continuation lines, indentation, JSON and SQL punctuation, keywords.
TOKENS = [
    "\n", "\r\n", "\r", " ", "    ", "\t", "\\", "\\\n", "#", "--", "/*", "*/", ";", ":", ",",
    "(", ")", "[", "]", "{", "}", "'", '"', "'''", '"""', "`", "f'", "rb'", "{x}", "{{",
    "def f():", "class C:", "if x:", "else:", "return", "pass", "import os", "print(1)",
    "x = 1", "@dec", "lambda: 0", "async ", "await ", "match x:", "case 1:",
    '{"a": 1', '"k": ', "true", "false", "null", "-0.5e+3", "1e999", "NaN", "[1, 2]",
    "SELECT * FROM t", "BEGIN", "END", "CREATE TRIGGER", "'it''s'", "$1", "1.", "é", "\u2028",
    "\x00", "\ufeff", "\U0001f600",
]  # fmt: skip
any_text = st.text(st.characters(codec=None), max_size=60)  # surrogates and controls too
token_text = st.lists(st.sampled_from(TOKENS), max_size=40).map("".join)
texts = st.one_of(
    token_text, any_text, st.lists(st.one_of(token_text, any_text), max_size=4).map("".join)
)


def parse(name: str, chunks: list[str]) -> list[Unit] | ParseError:
    parser = make_parser(name)
    units: list[Unit] = []
    try:
        for chunk in chunks:
            units.extend(parser.feed(chunk))
        units.extend(parser.close())
    except ParseError as e:
        return e
    return units


def cut(text: str, cuts: list[int]) -> list[str]:
    points = sorted({c % (len(text) + 1) for c in cuts})
    bounds = [0, *points, len(text)]
    return [text[a:b] for a, b in itertools.pairwise(bounds)]


def comparable(outcome: list[Unit] | ParseError) -> object:
    # repr: a NaN in unit data must compare equal to itself.
    return "ParseError" if isinstance(outcome, ParseError) else repr(outcome)


@pytest.mark.parametrize("name", sorted(PARSERS))
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=texts, cuts=st.lists(st.integers(min_value=0, max_value=10_000), max_size=12))
def test_any_text_any_chunking(name, text, cuts):
    whole = parse(name, [text])
    chunked = parse(name, cut(text, cuts))
    by_char = parse(name, list(text))
    assert comparable(chunked) == comparable(whole) == comparable(by_char)
    if isinstance(whole, list):
        end = 0
        for unit in whole:
            assert unit.text == text[unit.start : unit.end]
            assert end <= unit.start <= unit.end
            end = unit.end


@pytest.mark.parametrize("name", sorted(PARSERS))
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=texts, cuts=st.lists(st.integers(min_value=0, max_value=10_000), max_size=12))
def test_a_delta_the_wake_pattern_does_not_match_finishes_nothing(name, text, cuts):
    every, held_back = make_parser(name), make_parser(name)  # fed each delta / as a session does
    held: list[str] = []
    units: list[Unit] = []
    try:
        for chunk in cut(text, cuts):
            wake = getattr(held_back, "wake", None)
            if wake is not None and wake.search(chunk) is None:
                assert every.feed(chunk) == []  # it finishes nothing
                assert getattr(every, "wake", None) == wake  # and changes no wake
                held.append(chunk)
                continue
            every.feed(chunk)
            units.extend(held_back.feed("".join([*held, chunk])))
            held.clear()
        if held:
            units.extend(held_back.feed("".join(held)))
        units.extend(held_back.close())
    except ParseError:
        assert isinstance(parse(name, [text]), ParseError)
        return
    assert comparable(units) == comparable(parse(name, [text]))
