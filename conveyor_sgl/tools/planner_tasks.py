"""Plan lines in LLMCompiler's format, and the tools a plan's tasks can call.

A task line is ``<id>. <tool>(<arguments>)``; arguments are Python literals (strings,
numbers) and references ``$N`` (or ``${N}``) to an earlier task's result, alone or inside a
string: ``2. python("print(len('$1'))")``, ``3. join($1, $2)``. Other lines (``Thought: ...``,
``<END_OF_PLAN>``) are not tasks. Tools are the other tools' own logic run in this process
(no nested workers): ``search``, ``python``, ``calculator`` (alias ``math``) and ``join``.
"""

from __future__ import annotations

import ast
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from conveyor_sgl.parsers import make_parser, parse_chunks
from conveyor_sgl.tools.calculator import Evaluator, describe, format_number

_TASK = re.compile(r"^\s*(\d+)\s*\.\s*([A-Za-z_]\w*)\s*\((.*)\)\s*(?:#.*)?$", re.DOTALL)
_NUMBERED = re.compile(r"^\s*\d+\s*\.")
_DEP = re.compile(r"\$\{?(\d+)\}?")
_PLACEHOLDER = re.compile(r"__dep_(\d+)__")
TOOLS = ("search", "python", "calculator", "math", "join")


class PlanError(ValueError):
    """A plan line that can never run: bad syntax, an unknown tool, a bad reference."""


class TaskFailed(RuntimeError):
    """A task's tool reported an error (its message is the whole story)."""


@dataclass
class Task:
    id: int
    tool: str
    call: str  # the line as written, for the output
    args: list[ast.expr]
    deps: frozenset[int] = field(default_factory=frozenset)


def parse_task(line: str) -> Task | None:
    """The task on a plan line; None for a line that is not a task (a thought, the end)."""
    text = line.strip()
    match = _TASK.match(text)
    if match is None:
        if _NUMBERED.match(text):
            raise PlanError(f"not a task call: {text!r}")
        return None
    task_id, tool, args_text = int(match[1]), match[2], match[3]
    if tool not in TOOLS:
        raise PlanError(f"task {task_id}: unknown tool {tool!r} (tools: {', '.join(TOOLS)})")
    deps = frozenset(int(n) for n in _DEP.findall(args_text))
    if any(dep >= task_id for dep in deps):
        raise PlanError(f"task {task_id}: refers to ${max(deps)}, not an earlier task")
    # "$1" is no Python: a placeholder name stands for it, bare or inside a string.
    source = "_(" + _DEP.sub(r"__dep_\1__", args_text) + ")"
    try:
        call = ast.parse(source, mode="eval").body
    except SyntaxError as e:
        raise PlanError(f"task {task_id}: bad arguments ({e.msg})") from None
    if not isinstance(call, ast.Call) or call.keywords:
        raise PlanError(f"task {task_id}: arguments must be positional literals")
    return Task(task_id, tool, text, list(call.args), deps)


def resolve_args(task: Task, results: dict[int, str]) -> list[Any]:
    """The task's arguments with each ``$N`` replaced by task N's result text."""

    def substitute(text: str) -> str:
        return _PLACEHOLDER.sub(lambda m: results[int(m[1])].strip(), text)

    values: list[Any] = []
    for arg in task.args:
        if isinstance(arg, ast.Name) and _PLACEHOLDER.fullmatch(arg.id):
            values.append(substitute(arg.id))
        elif isinstance(arg, ast.Constant) and isinstance(arg.value, str):
            values.append(substitute(arg.value))
        elif isinstance(arg, ast.Constant) and isinstance(arg.value, int | float):
            values.append(arg.value)
        else:
            raise PlanError(f"task {task.id}: unsupported argument {ast.unparse(arg)!r}")
    return values


class TaskTools:
    """The tools' logic, shared by the tasks of one plan (threads call ``run``)."""

    def __init__(self, config: dict[str, Any]) -> None:
        self._search_config = dict(config.get("search", {}))
        self._python_config = dict(config.get("python", {}))
        self._engine: Any = None
        self._engine_lock = threading.Lock()
        # The Python tool swaps sys.stdout around each statement: one program at a time.
        self._python_lock = threading.Lock()
        self._tools: dict[str, Callable[..., str]] = {
            "search": self.search,
            "python": self.python,
            "calculator": self.calculator,
            "math": self.calculator,
            "join": self.join,
        }

    def run(self, tool: str, args: list[Any]) -> str:
        return self._tools[tool](*args)

    def search(self, query: str) -> str:
        from conveyor_sgl.tools.search import format_hits, make_engine, search_options

        with self._engine_lock:  # built once per plan, by the first search task
            if self._engine is None:
                self._engine = make_engine(self._search_config)
        k = search_options(self._search_config).top_k
        return format_hits(self._engine.search(str(query), k))

    def python(self, code: str) -> str:
        from conveyor_sgl.tools.python import PythonTool

        units = parse_chunks(make_parser(PythonTool.parser), [str(code).rstrip("\n") + "\n"])
        with self._python_lock:
            tool = PythonTool()
            tool.start(self._python_config)
            for unit in units:
                tool.feed(unit)
            out = tool.finish()
        if out.status != "ok":
            raise TaskFailed(f"{out.error}\n{out.output}".rstrip())
        return out.output

    def calculator(self, expression: str | float) -> str:
        try:
            _, value = Evaluator().run_line(str(expression))
        except (ArithmeticError, ValueError, TypeError) as e:
            raise TaskFailed(describe(e)) from None
        return format_number(value)

    def join(self, *parts: Any) -> str:
        return "\n".join(str(part).strip() for part in parts)
