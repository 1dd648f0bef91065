"""The root of every error this project raises to its users: ``except ConveyorError``
catches them all, while each keeps its standard base (``ValueError`` for bad input,
``RuntimeError`` for a failed process or connection) for code that already catches those.
A leaf module: it imports nothing of ours."""

from __future__ import annotations


class ConveyorError(Exception):
    """Raised by conveyor_sgl (a parse error, a busy pool, a refused request, ...)."""
