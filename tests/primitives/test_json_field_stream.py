"""The incremental JSON string-field reader gives json.loads' text under any chunking."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conveyor_sgl.primitives.json_field_stream import FieldStreamError, JsonFieldStream

# Text with what makes escaping hard: quotes, backslashes, newlines, controls, non-ASCII,
# astral characters (surrogate pairs under ensure_ascii) and lone surrogates.
_TEXT = st.text(
    alphabet=st.one_of(
        st.sampled_from(list('"\\\n\t\r\b\f/ux{}[],: ')),
        st.characters(min_codepoint=0, max_codepoint=0x1F),
        st.characters(codec="utf-8"),
        st.sampled_from(["\U0001f600", "\u00e9", "\u2028", "\ud83d", "\ude00"]),
    ),
    max_size=40,
)
_JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | _TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_TEXT, inner, max_size=3),
    max_leaves=8,
)


def _split(text: str, cuts: list[int]) -> list[str]:
    points = sorted({min(c, len(text)) for c in cuts})
    return [text[a:b] for a, b in zip([0, *points], [*points, len(text)], strict=True) if b > a]


def _read(field: str, chunks: list[str]) -> tuple[str, JsonFieldStream]:
    reader = JsonFieldStream(field)
    return "".join(reader.feed(chunk) for chunk in chunks), reader


@settings(max_examples=400, deadline=None)
@given(
    value=_TEXT,
    others=st.dictionaries(_TEXT, _JSON_VALUES, max_size=4),
    position=st.integers(min_value=0, max_value=4),
    ensure_ascii=st.booleans(),
    compact=st.booleans(),
    cuts=st.lists(st.integers(min_value=0, max_value=2000), max_size=30),
)
def test_any_chunking_gives_the_json_loads_text(
    value, others, position, ensure_ascii, compact, cuts
):
    others.pop("code", None)
    items = list(others.items())
    items.insert(min(position, len(items)), ("code", value))
    separators = (",", ":") if compact else (", ", ": ")
    document = json.dumps(dict(items), ensure_ascii=ensure_ascii, separators=separators)
    expected = json.loads(document)["code"]

    text, reader = _read("code", _split(document, cuts))
    assert text == expected
    assert reader.done
    reader.close()


@given(cuts=st.lists(st.integers(min_value=0, max_value=80), max_size=20))
def test_nested_keys_of_the_same_name_are_skipped(cuts):
    document = '{"meta": {"code": "no"}, "list": [{"code": "no"}], "code": "yes\\n"}'
    text, reader = _read("code", _split(document, cuts))
    assert (text, reader.done) == ("yes\n", True)


def test_characters_stream_before_the_string_closes():
    reader = JsonFieldStream("code")
    assert reader.feed('{"code": "x = 1\\') == "x = 1"
    assert reader.feed("n") == "\n"
    assert reader.feed("y = \\u00") == "y = "
    assert reader.feed("e9\\ud83d") == "\u00e9"  # a high surrogate waits for its partner
    assert reader.feed("\\ude00") == "\U0001f600"
    assert not reader.done
    assert reader.feed('"}') == ""
    assert reader.done


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ('{"other": 1}', "no string field 'code'"),
        ('{"code": 5}', "expected a string value"),
        ('{"code": "abc', "was cut off"),
        ('{"code": "a\\qb"}', "invalid escape"),
        ('{"code": "a\\u12x4"}', "invalid escape"),
        ('{"code": "a\nb"}', "control character"),
        ("[1, 2]", "no string field 'code'"),
        ("x", "not a JSON object"),
    ],
)
def test_arguments_without_the_field_are_errors_with_a_reason(document, message):
    reader = JsonFieldStream("code")
    with pytest.raises(FieldStreamError, match=message):
        reader.feed(document)
        reader.close()
