"""The planner tool: an LLMCompiler-style task fetching unit over a plan being decoded.

Each plan line (``1. search("...")``, ``2. python("...")``, ``3. join($1, $2)``, see
``planner_tasks``) becomes a task the moment the line is complete. A task whose
dependencies (``$N``) all have results is launched at once on a thread; the others wait and
are launched by the task that completes their last dependency. So independent tasks run in
parallel, and all of them run while the rest of the plan is still being decoded.

Config:
- ``search`` (object): the search tool's config for ``search`` tasks (``service_url``,
  ``delay_ms``, ``top_k``; see ``conveyor_sgl.tools.search``);
- ``python`` (object): the Python tool's config for ``python`` tasks;
- ``concurrency`` (int, default 4): tasks running at once;
- ``timeout_s`` (number, default 30): how long ``finish`` waits for the running tasks.

Output: every task in id order, ``<id>. <call>`` and its result indented below. A plan
error (bad line, unknown tool, reference to a task the plan never defines) or a failed task
gives status ``error`` naming the task; tasks that depend on a failed task are not run.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from enum import Enum
from typing import Any

from conveyor_sgl.parsers.base import Unit
from conveyor_sgl.tools.base import (
    ConfigReferences,
    Status,
    Tool,
    ToolOutput,
    UnitWork,
    check_known_options,
    option_limit,
)
from conveyor_sgl.tools.planner_tasks import (
    PlanError,
    Task,
    TaskFailed,
    TaskTools,
    parse_task,
    resolve_args,
)


class TaskState(Enum):
    WAITING = "waiting"  # a dependency has no result yet
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class PlannerTool(Tool):
    parser = "line"
    partial = True
    untrusted_code = True  # its python(...) tasks are model-written code, run in this worker

    @classmethod
    def check_config(cls, config: dict[str, Any]) -> None:
        from conveyor_sgl.tools.python import PythonTool
        from conveyor_sgl.tools.search import check_search_config

        check_known_options(config, ["search", "python", "concurrency", "timeout_s"])
        _limits(config)
        for key, check in (("search", check_search_config), ("python", PythonTool.check_config)):
            sub = config.get(key, {})
            if not isinstance(sub, dict):
                raise TypeError(f"{key} must be a mapping of {key} options, got {sub!r}")
            try:
                check(sub)
            except (TypeError, ValueError) as e:
                raise type(e)(f"{key}: {e}") from None

    @classmethod
    def config_references(cls, config: dict[str, Any]) -> ConfigReferences:
        """The nested search config's URL: a plan's search tasks fetch from it."""
        from conveyor_sgl.tools.search import search_references

        return search_references(config.get("search") or {})

    @classmethod
    def preload(cls) -> None:
        from conveyor_sgl.tools.search import SearchTool  # for the plan's search tasks

        SearchTool.preload()

    def start(self, config: dict[str, Any]) -> None:
        concurrency, self._timeout_s = _limits(config)
        self._tools = TaskTools(config)
        self._pool = ThreadPoolExecutor(concurrency, thread_name_prefix="plan-task")
        self._changed = threading.Condition()  # guards everything below
        self._tasks: dict[int, Task] = {}
        self._states: dict[int, TaskState] = {}
        self._results: dict[int, str] = {}
        self._errors: list[str] = []  # plan errors and failed tasks, in the order seen
        self._fed = 0  # units fed so far (every line, task or not)
        self._unit_of: dict[int, int] = {}  # task id -> its unit (position in feed order)
        self._spans: dict[int, tuple[float, float]] = {}  # task id -> when it ran

    def feed(self, unit: Unit) -> None:
        position, self._fed = self._fed, self._fed + 1
        try:
            task = parse_task(unit.text)
        except PlanError as e:
            with self._changed:
                self._errors.append(f"line {unit.data.get('lineno', '?')}: {e}")
            return
        if task is None:
            return
        with self._changed:
            if task.id in self._tasks:
                self._errors.append(f"task {task.id} is defined twice")
                return
            self._tasks[task.id] = task
            self._unit_of[task.id] = position
            self._states[task.id] = TaskState.WAITING
            self._launch_ready()

    def finish(self) -> ToolOutput:
        with self._changed:
            self._fail_undefined_deps()
            done = self._changed.wait_for(self._all_settled, self._timeout_s)
            output = self._report()
            work = self._work()
            errors = list(self._errors)
            if not done:
                running = [i for i, s in sorted(self._states.items()) if s is TaskState.RUNNING]
                errors.append(f"tasks {running} still running after {self._timeout_s:g}s")
        self._pool.shutdown(wait=False, cancel_futures=True)
        status: Status = "error" if errors else "ok"
        return ToolOutput(output, status, errors[0] if errors else None, work)

    def cancel(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _launch_ready(self) -> None:
        """Start every waiting task whose dependencies are done (lock held)."""
        for task_id in sorted(self._tasks):
            if self._states[task_id] is not TaskState.WAITING:
                continue
            deps = [self._states.get(dep) for dep in self._tasks[task_id].deps]
            if any(state is TaskState.FAILED for state in deps):
                self._settle(task_id, TaskState.FAILED, "not run: a dependency failed")
            elif all(state is TaskState.DONE for state in deps):
                self._states[task_id] = TaskState.RUNNING
                self._pool.submit(self._run, self._tasks[task_id], dict(self._results))

    def _run(self, task: Task, results: dict[int, str]) -> None:
        started = time.monotonic()
        try:
            result, state = self._tools.run(task.tool, resolve_args(task, results)), TaskState.DONE
        except TaskFailed as e:
            result, state = str(e), TaskState.FAILED
        except Exception as e:  # noqa: BLE001 - a failed task is data for the plan's result
            result, state = f"{type(e).__name__}: {e}", TaskState.FAILED
        with self._changed:
            self._spans[task.id] = (started, time.monotonic())
            self._settle(task.id, state, result)
            self._launch_ready()

    def _settle(self, task_id: int, state: TaskState, result: str) -> None:
        self._states[task_id] = state
        self._results[task_id] = result
        if state is TaskState.FAILED:
            self._errors.append(f"task {task_id} ({self._tasks[task_id].tool}): {result}")
        self._changed.notify_all()

    def _fail_undefined_deps(self) -> None:
        for task in self._tasks.values():
            missing = sorted(dep for dep in task.deps if dep not in self._tasks)
            if missing and self._states[task.id] is TaskState.WAITING:
                refs = ", ".join(f"${dep}" for dep in missing)
                self._settle(task.id, TaskState.FAILED, f"refers to {refs}, never defined")
        self._launch_ready()

    def _work(self) -> list[UnitWork]:
        """When each task that ran did so, and the tasks it waited for (lock held)."""
        return [
            UnitWork(
                self._unit_of[task_id],
                started,
                finished,
                tuple(sorted(self._unit_of[dep] for dep in self._tasks[task_id].deps)),
            )
            for task_id, (started, finished) in sorted(self._spans.items())
        ]

    def _all_settled(self) -> bool:
        return all(s in (TaskState.DONE, TaskState.FAILED) for s in self._states.values())

    def _report(self) -> str:
        lines = []
        for task_id in sorted(self._tasks):
            lines.append(f"{self._tasks[task_id].call}\n")
            result = self._results.get(task_id, "(still running)").rstrip("\n")
            lines += [f"   {line}\n" for line in result.splitlines() or [""]]
        return "".join(lines)


def _limits(config: dict[str, Any]) -> tuple[int, float]:
    """(concurrency, timeout_s), checked."""
    return (
        option_limit(config, "concurrency", 4, integer=True),
        float(option_limit(config, "timeout_s", 30.0)),
    )
