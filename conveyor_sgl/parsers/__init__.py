"""Incremental parsers that cut a decoded stream into units a tool can act on.

A tool names its parser (``Tool.parser``); the runtime builds one per partial tool call with
``make_parser(name)``, feeds it the text deltas and forwards the units it returns.
"""

from __future__ import annotations

from .base import ParseError, Parser, Unit, parse_chunks
from .json_args import JsonArgsParser
from .line import LineParser
from .python import PythonStatementParser
from .sql import SqlStatementParser

PARSERS: dict[str, type[Parser]] = {
    PythonStatementParser.name: PythonStatementParser,
    LineParser.name: LineParser,
    JsonArgsParser.name: JsonArgsParser,
    SqlStatementParser.name: SqlStatementParser,
}


def make_parser(name: str) -> Parser:
    """A fresh parser for one stream."""
    try:
        parser_class = PARSERS[name]
    except KeyError:
        known = ", ".join(sorted(PARSERS))
        raise ValueError(f"unknown parser {name!r}; known: {known}") from None
    return parser_class()


__all__ = [
    "PARSERS",
    "JsonArgsParser",
    "LineParser",
    "ParseError",
    "Parser",
    "PythonStatementParser",
    "SqlStatementParser",
    "Unit",
    "make_parser",
    "parse_chunks",
]
