"""The parser contract: pure, incremental, chunking-invariant.

A parser cuts a stream of decoded text into *units*: the smallest pieces a tool can act on
(a finished Python statement, a finished line, a finished JSON key/value pair). Parsers run
centrally, once per partial tool, never inside a tool.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from conveyor_sgl.errors import ConveyorError


class ParseError(ConveyorError, ValueError):
    """The input can never become valid for this parser (the only error a parser raises)."""


@dataclass(frozen=True)
class Unit:
    """One finished piece of the stream: ``text == stream[start:end]``.

    A parser's units come in stream order and never overlap; ``start``/``end`` are offsets in
    characters (str indices) from the start of the stream.
    """

    text: str
    start: int
    end: int
    # Structured content, for parsers that have one (the JSON parser: {"key": k, "value": v}).
    data: dict[str, Any] = field(default_factory=dict)


class Parser(Protocol):
    name: str
    # Optional (read with getattr, default None): a pattern that a delta must contain to
    # finish a unit or raise; a delta it does not match changes nothing but the buffered text.
    # The caller may then hold such a delta back and feed it joined to the next one: same
    # units (chunking-invariant), at the same moments, and no parser call for most tokens.
    # None: any delta may. May change with the parser's state (read it before each delta).
    wake: re.Pattern[str] | None

    def feed(self, delta: str) -> list[Unit]:
        """Take the next piece of text; return the units it finished, in order."""

    def close(self) -> list[Unit]:
        """The stream ended; return what is left as units (may raise ParseError)."""


def parse_chunks(parser: Parser, chunks: Iterable[str]) -> list[Unit]:
    """Feed every chunk, then close: all units of a stream, in order."""
    units: list[Unit] = []
    for chunk in chunks:
        units.extend(parser.feed(chunk))
    units.extend(parser.close())
    return units
