"""JsonArgsParser: key/value pairs as soon as they close, errors as soon as they are certain."""

from __future__ import annotations

import itertools
import json
import random
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conveyor_sgl.parsers import JsonArgsParser, ParseError, Unit, parse_chunks

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def parse(chunks: list[str]) -> list[Unit]:
    return parse_chunks(JsonArgsParser(), chunks)


def pairs(units: list[Unit]) -> list[tuple[object, object]]:
    return [(u.data["key"], u.data["value"]) for u in units]


def split_at(text: str, cuts: list[int]) -> list[str]:
    bounds = [0, *sorted(set(cuts)), len(text)]
    return [text[a:b] for a, b in itertools.pairwise(bounds)]


# --- examples ----------------------------------------------------------------------------------


def test_nested_values_and_spans():
    text = ' {"code": "print(1)\\n", "opts": {"a": [1, {"b": null}], "c": []}, "n": -1.5e3}'
    units = parse(list(text))
    assert pairs(units) == [
        ("code", "print(1)\n"),
        ("opts", {"a": [1, {"b": None}], "c": []}),
        ("n", -1500.0),
    ]
    assert [u.text for u in units] == [
        '"code": "print(1)\\n"',
        '"opts": {"a": [1, {"b": null}], "c": []}',
        '"n": -1.5e3',
    ]
    assert all(u.text == text[u.start : u.end] for u in units)


def test_strings_and_containers_are_emitted_at_their_closing_character():
    parser = JsonArgsParser()
    assert parser.feed('{"a": "x') == []
    assert pairs(parser.feed('"')) == [("a", "x")]
    assert parser.feed(', "b": [1, [2]') == []
    assert pairs(parser.feed("]")) == [("b", [1, [2]])]
    assert parser.feed("}") == []
    assert parser.close() == []


@pytest.mark.parametrize("closer", [",", "}", " ", "\n"])
@pytest.mark.parametrize("value", ["12", "-0.5", "1E+2", "true", "false", "null"])
def test_numbers_and_literals_close_on_the_next_character(value: str, closer: str):
    parser = JsonArgsParser()
    assert parser.feed('{"k": ' + value) == []
    assert pairs(parser.feed(closer)) == [("k", json.loads(value))]


def test_escapes_in_keys_and_values():
    text = '{"caf\\u00e9 \\"q\\"": "a\\\\b \\u00e9 \\/ \\t", "\\ud83d\\ude00": 1}'
    assert pairs(parse(list(text))) == [('café "q"', "a\\b é / \t"), ("😀", 1)]


def test_duplicate_keys_are_emitted_as_they_come():
    assert pairs(parse(['{"a": 1, "a": 2}'])) == [("a", 1), ("a", 2)]


def test_empty_object_and_surrounding_whitespace():
    assert parse(["\n\t {", " }", " \r\n"]) == []


@pytest.mark.parametrize(
    ("text", "offset"),
    [
        ("[1]", 0),
        ('x{"a": 1}', 0),
        ('{"a" 1}', 5),
        ('{"a": tru}', 9),
        ('{"a": 01}', 7),
        ('{"a": 1.}', 8),
        ('{"a": -}', 7),
        ('{"a": 1e}', 8),
        ('{"a": "\\x"}', 8),
        ('{"a": "\\u12G4"}', 11),
        ('{"a": "b\nc"}', 8),
        ('{"a": 1,}', 8),
        ('{"a": 1} x', 9),
        ('{"a": 1]', 7),
        ('{"a": [1, 2 x', 12),
        ('{"a": [1,]}', 9),
        ('{"a": }', 6),
        ("{,}", 1),
        ("{'a': 1}", 1),
        ('{"a": {"b" 1}}', 11),
        ('{"a": nul', None),  # not yet certain: only close() can tell
    ],
)
def test_malformed_input_raises_in_the_delta_that_makes_it_certain(text: str, offset: int | None):
    parser = JsonArgsParser()
    if offset is None:
        parser.feed(text)
        return
    parser.feed(text[:offset])
    with pytest.raises(ParseError, match=f"offset {offset}:"):
        parser.feed(text[offset:])
    with pytest.raises(ParseError, match=f"offset {offset}:"):  # the parser stays failed
        parser.feed("}")


@pytest.mark.parametrize("text", ["", "  ", "{", '{"a"', '{"a": 1', '{"a": "abc', '{"a": 1,'])
def test_close_on_an_unfinished_object_raises_truncated(text: str):
    parser = JsonArgsParser()
    parser.feed(text)
    with pytest.raises(ParseError, match=r"^truncated JSON object"):
        parser.close()


def test_absurd_nesting_is_a_parse_error_not_a_crash():
    with pytest.raises(ParseError):
        parse(['{"a": ' + "[" * 100_000 + "]" * 100_000 + "}"])


def test_long_value_in_tiny_deltas_is_linear():
    import time

    text = json.dumps({"code": "x = 1\n" * 50_000, "n": list(range(20_000))})
    begin = time.perf_counter()
    units = parse([text[i : i + 4] for i in range(0, len(text), 4)])
    assert [u.data["key"] for u in units] == ["code", "n"]
    assert time.perf_counter() - begin < 3.0


# --- properties --------------------------------------------------------------------------------

SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8)
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner, max_size=4)
    ),
    max_leaves=10,
)
WHITESPACE = ["", "", "", " ", "\n  ", "\t", "\r\n"]


def dump(value: object, rnd: random.Random) -> str:
    """json.dumps with random whitespace between every pair of tokens."""

    def ws() -> str:
        return rnd.choice(WHITESPACE)

    if isinstance(value, dict):
        items = [
            ws() + dump(k, rnd) + ws() + ":" + ws() + dump(v, rnd) + ws() for k, v in value.items()
        ]
        return "{" + (",".join(items) or ws()) + "}"
    if isinstance(value, list):
        return "[" + (",".join(ws() + dump(v, rnd) + ws() for v in value) or ws()) + "]"
    return json.dumps(value, ensure_ascii=rnd.random() < 0.5)


@FAST
@given(st.data(), st.dictionaries(st.text(max_size=6), VALUES, max_size=6), st.randoms())
def test_generated_objects_are_cut_into_their_pairs(
    data: st.DataObject, obj: dict, rnd: random.Random
):
    text = rnd.choice(WHITESPACE) + dump(obj, rnd) + rnd.choice(WHITESPACE)
    chunks = (
        list(text)
        if rnd.random() < 0.3
        else split_at(text, data.draw(st.lists(st.integers(0, len(text)))))
    )
    units = parse(chunks)
    assert units == parse([text])
    assert pairs(units) == list(obj.items())
    for unit, (key, value) in zip(units, obj.items(), strict=True):
        assert unit.text == text[unit.start : unit.end] == unit.text.strip()
        assert json.loads("{" + unit.text + "}") == {key: value}
    assert [u.start for u in units] == sorted(u.start for u in units)


def outcome(chunks: list[str]) -> tuple[str, object]:
    try:
        return "ok", parse(chunks)
    except ParseError as exc:  # anything else escaping is a bug
        return "error", str(exc)


def mutate(text: str, rnd: random.Random) -> str:
    at = rnd.randrange(len(text) + 1)
    edit = rnd.choice(["insert", "delete", "replace"])
    char = rnd.choice('{}[]:,"\\ 0-.eu1tfnx\n')
    if edit == "insert":
        return text[:at] + char + text[at:]
    return text[:at] + (char if edit == "replace" else "") + text[at + 1 :]


@FAST
@given(
    st.data(),
    st.dictionaries(st.text(max_size=4), VALUES, max_size=4),
    st.randoms(),
    st.text(max_size=30),
)
def test_any_text_gives_units_or_a_parse_error_independent_of_chunking(
    data: st.DataObject, obj: dict, rnd: random.Random, noise: str
):
    text = rnd.choice(
        [noise, mutate(dump(obj, rnd), rnd), mutate(mutate(dump(obj, rnd), rnd), rnd)]
    )
    result = outcome([text])
    assert outcome(split_at(text, data.draw(st.lists(st.integers(0, len(text)))))) == result
    assert outcome(list(text)) == result
    found = (
        re.match(r"invalid JSON at offset (\d+):", str(result[1])) if result[0] == "error" else None
    )
    if found:  # the error is raised by the delta holding the offending character, not later
        offset = int(found.group(1))
        parser = JsonArgsParser()
        parser.feed(text[:offset])
        with pytest.raises(ParseError):
            parser.feed(text[offset : offset + 1])
