"""A program that cannot work fails before it sends anything to the server.

``tool_result(name)`` takes the result of the ``partial_tool(name)`` before it, once, and a
partial tool needs an SGLang server backend. A program run by SGLang's interpreter submits
its nodes as its function runs, and a node only fails when the executor reaches it, after
the generations before it have decoded (and only in ``state.error()``). So before a program
with our primitives runs, its function is traced with SGLang's own tracer (as ``run_batch``
traces programs to cache their prefix): the nodes it builds, in order, up to the first
place where it reads what the model wrote (``s["x"]``, ``s.text()``, a fork). From there on
what it does may depend on that text, so the check stops; the executor's own checks still
apply to the rest.

The function body runs twice up to that point (once traced, once for real): side effects
there (a print, a counter, an iterator argument consumed) happen twice. Only a function
whose code names ``partial_tool`` or ``tool_result`` is traced; one that reaches them
through a helper elsewhere is checked as it runs.
"""

from __future__ import annotations

import threading
import types
from collections.abc import Callable, Sequence
from typing import Any

from sglang.lang.ir import SglExpr
from sglang.lang.tracer import TracerProgramState

from conveyor_sgl.primitives.endpoint import check_backend
from conveyor_sgl.primitives.ir import (
    ProgramError,
    SglPartialTool,
    SglToolResult,
    partial_tool,
    tool_result,
)

_PRIMITIVES = {"partial_tool": partial_tool, "tool_result": tool_result}
# Set while this thread traces a program. Not SGLang's TracingScope: that one is a
# process-wide global, which a trace in one thread would set for every other thread's runs.
_tracing = threading.local()


class _TraceEnds(Exception):
    """The traced program reads what the model wrote, or runs another program: the trace
    ends there."""


class _PrefixTracer(TracerProgramState):
    """SGLang's tracer, stopped where the program first depends on the model's output."""

    def get_var(self, name: str) -> Any:
        raise _TraceEnds(name)

    def fork(self, *args: Any, **kwargs: Any) -> Any:
        raise _TraceEnds("fork")  # each branch is a program of its own


def check_program(program: Any, backend: Any, args: Sequence[Any], kwargs: dict[str, Any]) -> None:
    """Raise ``ProgramError`` if ``program`` takes a tool result it cannot have, or
    ``BackendError`` if it has a partial tool and ``backend`` is no SGLang server."""
    if getattr(_tracing, "active", False):
        # The traced program runs another program: that would send requests, so the trace
        # ends here (and the real run will check that program when it starts).
        raise _TraceEnds("a nested program")
    if backend is None or not _names_primitives(program.func):
        return
    nodes = _traced_nodes(program, backend, args, {**kwargs, **program.bind_arguments})
    check_order(nodes)
    if any(isinstance(node, SglPartialTool) for node in nodes):
        check_backend(backend)


def check_order(nodes: Sequence[SglExpr]) -> None:
    """Each ``tool_result(name)`` after a ``partial_tool(name)`` whose result is not taken."""
    started: list[str] = []  # partial tools whose result is not taken yet
    taken: set[str] = set()
    for node in nodes:
        if isinstance(node, SglPartialTool):
            started.append(node.name)
        elif isinstance(node, SglToolResult):
            if node.name in started:
                started.remove(node.name)
                taken.add(node.name)
                continue
            raise ProgramError(_unmatched(node.name, started, taken))


def _unmatched(name: str, started: list[str], taken: set[str]) -> str:
    text = f"tool_result({name!r}) has no partial_tool({name!r}) before it in this program"
    if name in taken:
        return (
            f"{text} whose result is not taken yet: the result of partial_tool({name!r}) was "
            "already taken by an earlier tool_result; take each result once"
        )
    hint = f" (its partial tools so far: {', '.join(map(repr, started))})" if started else ""
    return (
        f"{text}{hint}: add s += partial_tool({name!r}, tool=...) before it, or take the "
        "result of a partial tool by its variable name"
    )


def _traced_nodes(
    program: Any, backend: Any, args: Sequence[Any], kwargs: dict[str, Any]
) -> list[SglExpr]:
    tracer = _PrefixTracer(backend, kwargs, only_trace_prefix=False)
    _tracing.active = True
    try:
        program.func(tracer, *args, **kwargs)
    except Exception:  # noqa: BLE001, S110 - the trace ends; the real run meets the error itself
        pass
    finally:
        _tracing.active = False
    return tracer.flatten_nodes()


def _names_primitives(func: Callable[..., Any]) -> bool:
    """Whether ``func``'s code names ``partial_tool`` or ``tool_result``: as a global or
    closure variable bound to one (any alias) or as an attribute (``cs.tool_result``)."""
    code = getattr(func, "__code__", None)
    if code is None:
        return True  # not a plain function: trace it
    names: set[str] = set()
    todo = [code]
    while todo:
        current = todo.pop()
        names.update(current.co_names, current.co_freevars)
        todo += [c for c in current.co_consts if isinstance(c, types.CodeType)]
    if names & _PRIMITIVES.keys():
        return True
    scope = getattr(func, "__globals__", {})
    cells = dict(zip(code.co_freevars, getattr(func, "__closure__", None) or (), strict=False))
    for name in names:
        value = scope.get(name)
        if name in cells:
            try:
                value = cells[name].cell_contents
            except ValueError:  # an empty cell
                continue
        if any(value is primitive for primitive in _PRIMITIVES.values()):
            return True
    return False
