"""LineParser: one unit per non-blank line, chunking-invariant."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from conveyor_sgl.parsers import LineParser, Unit, parse_chunks


def parse(chunks: list[str]) -> list[Unit]:
    return parse_chunks(LineParser(), chunks)


def test_each_line_is_emitted_on_its_newline():
    parser = LineParser()
    assert parser.feed("ls -") == []
    assert parser.feed("l\npw") == [Unit("ls -l\n", 0, 6, {"lineno": 1})]
    assert parser.feed("d\n") == [Unit("pwd\n", 6, 10, {"lineno": 2})]
    assert parser.close() == []


def test_blank_lines_are_skipped_but_offsets_stay_right():
    units = parse(["a\n\n  \n", "\r\nb\r\n", "c"])
    assert units == [
        Unit("a\n", 0, 2, {"lineno": 1}),
        Unit("b\r\n", 8, 11, {"lineno": 5}),
        Unit("c", 11, 12, {"lineno": 6}),
    ]


def test_close_drops_an_unterminated_blank_line():
    assert parse(["x\n", "   "]) == [Unit("x\n", 0, 2, {"lineno": 1})]
    assert parse([]) == []


def test_unicode_lines():
    assert [u.text for u in parse(list("é ✓\n😀"))] == ["é ✓\n", "😀"]


def reference(text: str) -> list[Unit]:
    units, position = [], 0
    for lineno, line in enumerate(text.split("\n"), start=1):
        piece = line + "\n" if position + len(line) < len(text) else line
        if piece.strip():
            units.append(Unit(piece, position, position + len(piece), {"lineno": lineno}))
        position += len(piece)
    return units


@settings(max_examples=200, deadline=None)
@given(st.data(), st.text(st.sampled_from(list("ab é😀\t\r\n")) | st.characters(), max_size=60))
def test_chunking_invariance_and_coverage(data: st.DataObject, text: str):
    cuts = data.draw(st.lists(st.integers(0, len(text)), max_size=20))
    bounds = [0, *sorted(set(cuts)), len(text)]
    chunks = [text[a:b] for a, b in itertools.pairwise(bounds)]
    units = parse(chunks)
    assert units == parse([text]) == parse(list(text)) == reference(text)
    for unit in units:
        assert unit.text == text[unit.start : unit.end]
