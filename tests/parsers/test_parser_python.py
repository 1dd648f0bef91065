"""PythonStatementParser: statement boundaries, the moment of emission, chunking invariance."""

from __future__ import annotations

import ast
import itertools

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conveyor_sgl.parsers import PythonStatementParser, Unit, parse_chunks

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Each snippet is one top-level statement (plus the newline ending it).
SNIPPETS = [
    "x = 1\n",
    "a = 1; b = 2\n",
    "match = 3\n",
    "case = 4\n",
    "match(x)\n",
    "print('hi')  # trailing comment\n",
    "total = (1 +\n         2)\n",
    "y = 1 + \\\n    2\n",
    's = """\nx = 1\nif y:\n"""\n',
    "t = 'abc\\\ndef'\n",
    "u = f'{a!r:>{w}}' + r'\\d+\\'' + b'\\x00'.decode()\n",
    "if x:\n    y = 1\nelif z:\n    y = 2\nelse:\n    y = 3\n",
    "if a: b = 1\n",
    "if x:\n    pass\n\n    # indented comment\n\nelse:\n    pass\n",
    "try:\n    f()\nexcept ValueError:\n    pass\nelse:\n    pass\nfinally:\n    done = True\n",
    "@dec\n@dec2(1)\ndef f(a, b):\n    return a + b\n",
    "class C:\n    x = 1\n\n    def m(self):\n        return self.x\n",
    "def g():\n    '''doc\nstring'''\n# a comment at column 0 inside the body\n    return 1\n",
    "for i in range(3):\n    pass\nelse:\n    pass\n",
    "while False:\n    break\n",
    "with open(p) as fh:\n    data = fh.read()\n",
    "async def h():\n    await x\n",
    "match cmd:\n    case 1:\n        pass\n    case _:\n        pass\n",
    "é = 'ünïcödé ✓ 😀'\n",
    "f(\n    1,\n    2,\n)\n",
    "xs = [\n# comment inside brackets\n    1,\n]\n",
    "d = {'a': 1,\n     'b': [2, 3]}\n",
    "lam = lambda: 0\n",
    "class D: pass\n",
    "elapsed = 5\n",
    "finally_ = exceptional = 6\n",
    "iffy = 7\n",
]
SNIPPETS.append("try:\n    f()\nexcept* TypeError:\n    pass\n")
FILLERS = ["", "", "", "\n", "# note\n", "\n# note é\n\n", "   \n", "    # indented\n"]


def parse(chunks: list[str]) -> list[Unit]:
    return parse_chunks(PythonStatementParser(), chunks)


def texts(units: list[Unit]) -> list[str]:
    return [u.text for u in units]


def split_at(text: str, cuts: list[int]) -> list[str]:
    bounds = [0, *sorted(set(cuts)), len(text)]
    return [text[a:b] for a, b in itertools.pairwise(bounds)]


@st.composite
def chunkings(draw: st.DrawFn, text: str) -> list[str]:
    if draw(st.booleans()):
        return list(text)  # 1-character deltas
    return split_at(text, draw(st.lists(st.integers(0, len(text)), max_size=30)))


@st.composite
def programs(draw: st.DrawFn) -> tuple[str, list[str]]:
    """A program built from snippets, and the unit texts it must be cut into."""
    pieces = draw(st.lists(st.sampled_from(SNIPPETS), min_size=1, max_size=8))
    expected = [draw(st.sampled_from(FILLERS)) + piece for piece in pieces]
    trailing = draw(st.sampled_from(FILLERS))
    if draw(st.booleans()):
        expected = [e.replace("\n", "\r\n") for e in expected]
        trailing = trailing.replace("\n", "\r\n")
    if not trailing and draw(st.booleans()):  # no newline after the last statement
        expected[-1] = expected[-1].rstrip("\r\n")
    return "".join(expected) + trailing, expected


# --- the moment of emission ------------------------------------------------------------------


def test_simple_statement_is_emitted_on_its_newline():
    parser = PythonStatementParser()
    assert parser.feed("x = ") == []
    assert parser.feed("1") == []
    assert parser.feed("\n") == [Unit("x = 1\n", 0, 6, {"lineno": 1})]
    assert parser.close() == []


def test_compound_waits_for_the_next_column0_line():
    parser = PythonStatementParser()
    assert parser.feed("if a:\n    b\n") == []
    units = parser.feed("print(1)\n")
    assert texts(units) == ["if a:\n    b\n", "print(1)\n"]
    assert [u.data["lineno"] for u in units] == [1, 3]


def test_block_ends_as_soon_as_the_first_word_rules_out_a_clause():
    parser = PythonStatementParser()
    parser.feed("if a:\n    b\n")
    assert parser.feed("e") == []  # could still become 'else'
    assert parser.feed("l") == []
    assert texts(parser.feed("a")) == ["if a:\n    b\n"]  # 'ela...' is no clause
    assert texts(parser.feed("psed = 1\n")) == ["elapsed = 1\n"]


def test_keyword_prefix_of_an_identifier_is_not_a_clause():
    parser = PythonStatementParser()
    parser.feed("for i in x:\n    pass\nelse")
    assert parser.feed("_") == [Unit("for i in x:\n    pass\n", 0, 21, {"lineno": 1})]


def test_if_elif_else_in_separate_deltas():
    deltas = ["if a:\n", "    x = 1\n", "elif b:\n", "    x = 2\n", "else:\n", "    x = 3\n"]
    parser = PythonStatementParser()
    assert [parser.feed(d) for d in deltas] == [[]] * len(deltas)
    assert texts(parser.close()) == ["".join(deltas)]


def test_try_except_finally_stays_one_unit():
    src = "try:\n    f()\nexcept ValueError:\n    g()\nexcept* E:\n    h()\nfinally:\n    i()\n"
    assert texts(parse([src, "done()\n"])) == [src, "done()\n"]


def test_decorated_definition_is_one_unit():
    src = "@a\n@b(1,\n   2)\n\ndef f():\n    return 1\n"
    assert texts(parse([src + "f()\n"])) == [src, "f()\n"]


def test_class_with_methods_and_blank_lines_inside():
    src = "class C:\n    x = 1\n\n\n    def m(self):\n\n        return 2\n"
    assert texts(parse([src + "\n\nc = C()\n"])) == [src, "\n\nc = C()\n"]


def test_column0_line_inside_a_multiline_string_is_not_a_statement():
    src = 'def f():\n    s = """\nx = 1\nelse:\n"""\n    return s\n'
    assert texts(parse(list(src + "f()\n"))) == [src, "f()\n"]
    assert texts(parse(['t = """\n', "x = 1\n", '"""\n'])) == ['t = """\nx = 1\n"""\n']


def test_bracketed_call_and_backslash_continuation():
    call = "print(\n    1,\n    [2,\n3],\n)\n"
    joined = "y = 1 + \\\n2\n"
    assert texts(parse(list(call + joined))) == [call, joined]


def test_comments_and_blank_lines_join_the_next_statement():
    src = "# head\n\nx = 1  # tail\n    # indented\n\ny = 2\n# only a comment\n\n"
    units = parse([src])
    assert texts(units) == ["# head\n\nx = 1  # tail\n", "    # indented\n\ny = 2\n"]
    assert [u.data["lineno"] for u in units] == [1, 4]


def test_trailing_comments_after_a_block_are_dropped_at_close():
    assert texts(parse(["def f():\n    pass\n# bye\n"])) == ["def f():\n    pass\n"]


def test_match_is_a_soft_keyword():
    src = "match = 3\nmatch x:\n    case 1:\n        pass\ncase = 4\nmatch(x)\n"
    expected = ["match = 3\n", "match x:\n    case 1:\n        pass\n", "case = 4\n", "match(x)\n"]
    assert texts(parse(list(src))) == expected


def test_several_statements_on_one_line_are_one_unit():
    assert texts(parse(["a = 1; b = 2\nc = 3\n"])) == ["a = 1; b = 2\n", "c = 3\n"]


def test_crlf_and_unicode():
    src = "é = 'ü ✓ 😀'\r\nif é:\r\n    print(é)\r\nz = 1\r\n"
    assert texts(parse(list(src))) == ["é = 'ü ✓ 😀'\r\n", "if é:\r\n    print(é)\r\n", "z = 1\r\n"]


def test_last_statement_without_newline_is_emitted_at_close():
    parser = PythonStatementParser()
    assert parser.feed("x = 1\ny = 2") == [Unit("x = 1\n", 0, 6, {"lineno": 1})]
    assert parser.close() == [Unit("y = 2", 6, 11, {"lineno": 2})]


@pytest.mark.parametrize(
    ("src", "expected"),
    [
        ("x = = 1\ny = 2\n", ["x = = 1\n", "y = 2\n"]),
        ("if x\n    y\nz\n", ["if x\n    y\n", "z\n"]),  # a compound keyword opens a block
        ("iff x:\n    y\nz\n", ["iff x:\n    y\n", "z\n"]),  # ends with ':': a block
        ("else:\n    y\nz\n", ["else:\n    y\n", "z\n"]),
        ("  x = 1\ny\n", ["  x = 1\n", "y\n"]),
        ("s = 'abc\nt = 1\n", ["s = 'abc\n", "t = 1\n"]),  # unterminated string
        ("f(1,\n2\n", ["f(1,\n2\n"]),  # unclosed bracket: everything at close
        ("x = 1 \\", ["x = 1 \\"]),
        (
            's = """\nnever closed\n# still a string\n',
            ['s = """\nnever closed\n# still a string\n'],
        ),
        ("@dec\n", ["@dec\n"]),
        ("def f(x) y:\n  pass\nx = ]\n", ["def f(x) y:\n  pass\n", "x = ]\n"]),
        ("def f(:\n  pass\nx = 1\n", ["def f(:\n  pass\nx = 1\n"]),  # '(' never closes
    ],
)
def test_code_that_does_not_compile_is_cut_the_same_way(src: str, expected: list[str]):
    assert texts(parse([src])) == expected
    assert texts(parse(list(src))) == expected


# --- properties --------------------------------------------------------------------------------


def nodes(text: str) -> list[str]:
    return [ast.dump(node) for node in ast.parse(text).body]


@FAST
@given(st.data())
def test_snippet_programs_are_cut_into_their_statements(data: st.DataObject):
    program, expected = data.draw(programs())
    units = parse(data.draw(chunkings(program)))
    assert texts(units) == expected
    assert units == parse([program])
    # Each unit holds exactly the top-level nodes ast sees for it, and together all of them.
    assert [n for u in units for n in nodes(u.text)] == nodes(program)
    for unit, text in zip(units, expected, strict=True):
        assert nodes(unit.text) == nodes(text) != []


def check_coverage(text: str, units: list[Unit]) -> None:
    position = 0
    for unit in units:
        assert unit.start == position and unit.text == text[unit.start : unit.end]
        assert unit.data == {"lineno": text.count("\n", 0, unit.start) + 1}
        assert unit.text.strip()
        position = unit.end
    for line in text[position:].split("\n"):  # only blank/comment lines may be dropped
        assert not line.strip() or line.strip().startswith("#")


PYTHONISH = st.text(st.sampled_from(list("ifelsxcaoumth:#'\"\\()[]{}@=_1é😀 \t\n\r")), max_size=80)
FRAGMENTS = st.lists(st.sampled_from(SNIPPETS + [s[: len(s) // 2] for s in SNIPPETS]), max_size=6)


@FAST
@given(st.data(), st.one_of(st.text(max_size=80), PYTHONISH, FRAGMENTS.map("".join)))
def test_any_text_is_covered_and_chunking_invariant(data: st.DataObject, text: str):
    units = parse([text])  # never raises
    check_coverage(text, units)
    assert parse(data.draw(chunkings(text))) == units
    assert parse(list(text)) == units


def test_cost_is_linear_in_the_stream_length():
    # A long bracketed literal and a long string fed in tiny deltas: scanning is per character,
    # so 20k lines must take well under a second (a quadratic re-parse would take minutes).
    import time

    body = (
        "data = [\n" + "    {'k': 1},\n" * 10_000 + "]\n" + 's = """\n' + "x\n" * 10_000 + '"""\n'
    )
    begin = time.perf_counter()
    units = parse([body[i : i + 3] for i in range(0, len(body), 3)])
    assert len(units) == 2 and time.perf_counter() - begin < 2.0
