"""The one place where conveyor_sgl touches SGLang's interpreter.

We wrap ``run_program`` and four ``StreamExecutor`` methods and leave everything else to
SGLang's own code, so programs without partial tools run exactly as stock:
- ``run_program`` (what ``program.run()`` and ``run_batch`` call) first checks a program that
  takes tool results (``program_check``): one that takes a result it cannot have raises
  ``ProgramError`` from ``.run()``, before anything is sent;
- ``_execute`` (the dispatcher every IR node goes through) routes our two node types, and
  stock ``gen`` nodes that follow a partial tool, to ``executor.py``;
- ``_init_var_event`` (called when a node is submitted) gives each submitted
  ``tool_result(name)`` an event, kept in ``variable_event`` so that SGLang's own error path
  releases it too;
- ``get_meta_info(name)`` waits for that event, so ``state.get_meta_info("code")["tool"]``
  is there as soon as the tool result is, like any later variable;
- ``_thread_worker_func`` (the executor's thread, which ends with the program) cancels the
  tools whose result the program never took, so a failed program leaves no worker behind.
``check_hooked_api`` fails loudly if the private API we rely on changes.
"""

from __future__ import annotations

import inspect
import re
import threading
from typing import Any

import sglang
from sglang.lang import interpreter
from sglang.lang.ir import SglExprList, SglGen

from conveyor_sgl.errors import ConveyorError
from conveyor_sgl.primitives import executor
from conveyor_sgl.primitives.ir import SglPartialTool, SglToolResult, tool_event_key
from conveyor_sgl.primitives.program_check import check_program
from conveyor_sgl.primitives.token_ledger import get_ledger

SUPPORTED_SGLANG = "0.5.23"
# Private members of StreamExecutor that the executor reads or calls.
_EXECUTOR_MEMBERS = (
    "_execute",
    "_execute_fill",
    "_resolve_sampling_params",
    "_init_var_event",
    "get_meta_info",
    "_thread_worker_func",
)
_EXECUTOR_STATE = (
    "text_",
    "variables",
    "variable_event",
    "meta_info",
    "stream",
    "stream_var_event",
    "stream_text_event",
    "backend",
    "images_",
)
# The leading parameters of interpreter.run_program that the check reads.
_RUN_PROGRAM_PARAMETERS = ["program", "backend", "func_args", "func_kwargs"]
_MARK = "__conveyor_original__"


class HookedApiChanged(ConveyorError, RuntimeError):
    pass


def check_hooked_api() -> None:
    """Raise HookedApiChanged naming what moved, if this sglang is not the one we hook."""
    if sglang.__version__ != SUPPORTED_SGLANG:
        raise HookedApiChanged(
            f"conveyor_sgl hooks sglang {SUPPORTED_SGLANG}'s interpreter; "
            f"found {sglang.__version__}"
        )
    cls = interpreter.StreamExecutor
    missing = [m for m in _EXECUTOR_MEMBERS if not callable(getattr(cls, m, None))]
    init_src = inspect.getsource(cls.__init__)
    missing += [a for a in _EXECUTOR_STATE if not re.search(rf"self\.{a}\b[^=\n]*=", init_src)]
    original = getattr(cls._execute, _MARK, cls._execute)
    if list(inspect.signature(original).parameters) != ["self", "other"]:
        missing.append("_execute(self, other) signature")
    run_program = getattr(interpreter.run_program, _MARK, interpreter.run_program)
    if list(inspect.signature(run_program).parameters)[:4] != _RUN_PROGRAM_PARAMETERS:
        missing.append(f"run_program({', '.join(_RUN_PROGRAM_PARAMETERS)}, ...) signature")
    if missing:
        raise HookedApiChanged(f"sglang.lang.interpreter.StreamExecutor changed: {missing}")


def _route(original: Any) -> Any:
    def _execute(self: Any, other: Any) -> None:
        if isinstance(other, SglPartialTool):
            return executor.execute_partial_tool(self, other)
        if isinstance(other, SglToolResult):
            return executor.execute_tool_result(self, other)
        if type(other) is SglGen and get_ledger(self) is not None and not self.images_:
            return executor.execute_gen_with_ids(self, other)
        return original(self, other)

    setattr(_execute, _MARK, original)
    return _execute


def _register_events(original: Any) -> Any:
    def _init_var_event(self: Any, expr: Any) -> None:
        original(self, expr)
        for node in _flatten(expr):
            if isinstance(node, SglToolResult):
                self.variable_event[tool_event_key(node.name)] = threading.Event()

    setattr(_init_var_event, _MARK, original)
    return _init_var_event


def _wait_for_tool(original: Any) -> Any:
    def get_meta_info(self: Any, name: str, timeout: float | None = None) -> Any:
        event = self.variable_event.get(tool_event_key(name))
        if event is not None and not event.wait(timeout):
            raise TimeoutError(f"Timeout while waiting for tool_result('{name}')")
        return original(self, name, timeout)

    setattr(get_meta_info, _MARK, original)
    return get_meta_info


def _flatten(expr: Any) -> list[Any]:
    if isinstance(expr, SglExprList):
        return [node for child in expr.expr_list for node in _flatten(child)]
    return [expr]


def _end_tools_with_the_program(original: Any) -> Any:
    # The executor's thread runs every node of the program, then ends (after an error too):
    # a tool whose result no node took can never be taken, so its worker ends here.
    def _thread_worker_func(self: Any) -> None:
        try:
            original(self)
        finally:
            executor.end_pending(self)

    setattr(_thread_worker_func, _MARK, original)
    return _thread_worker_func


def _check_first(original: Any) -> Any:
    def run_program(
        program: Any, backend: Any, func_args: Any, func_kwargs: Any, *args: Any, **kwargs: Any
    ) -> Any:
        # As run_program resolves it; no backend is its own error (an assert), left to it.
        resolved = getattr(backend, "endpoint", backend)
        check_program(program, resolved, tuple(func_args), dict(func_kwargs))
        return original(program, backend, func_args, func_kwargs, *args, **kwargs)

    setattr(run_program, _MARK, original)
    return run_program


_WRAPPERS = {
    "_execute": _route,
    "_init_var_event": _register_events,
    "get_meta_info": _wait_for_tool,
    "_thread_worker_func": _end_tools_with_the_program,
}


def install() -> None:
    """Idempotent: wrap ``run_program`` and the four ``StreamExecutor`` methods once per
    process."""
    cls = interpreter.StreamExecutor
    if hasattr(cls._execute, _MARK):
        return
    check_hooked_api()
    for name, wrap in _WRAPPERS.items():
        setattr(cls, name, wrap(getattr(cls, name)))
    interpreter.run_program = _check_first(interpreter.run_program)
