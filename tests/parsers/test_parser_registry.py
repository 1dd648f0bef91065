"""The parser registry: names to fresh parser instances."""

from __future__ import annotations

import pytest

from conveyor_sgl import parsers
from conveyor_sgl.parsers import (
    PARSERS,
    JsonArgsParser,
    LineParser,
    PythonStatementParser,
    SqlStatementParser,
    make_parser,
)


def test_registry_names_match_the_parsers():
    assert PARSERS == {
        "python": PythonStatementParser,
        "line": LineParser,
        "json": JsonArgsParser,
        "sql": SqlStatementParser,
    }
    for name, parser_class in PARSERS.items():
        parser = make_parser(name)
        assert isinstance(parser, parser_class) and parser.name == name
        assert make_parser(name) is not parser  # one parser per stream


def test_unknown_parser_names_the_known_ones():
    with pytest.raises(ValueError, match=r"unknown parser 'yaml'; known: json, line, python"):
        make_parser("yaml")


def test_contract_types_are_reexported():
    from conveyor_sgl.parsers import base

    assert (parsers.Unit, parsers.Parser, parsers.ParseError) == (
        base.Unit,
        base.Parser,
        base.ParseError,
    )
    assert issubclass(parsers.ParseError, ValueError)
