"""The planner tool: LLMCompiler plan lines become tasks launched as their inputs are ready."""

from __future__ import annotations

import time

import pytest
from tool_drive import drive
from worker_fixtures import fresh_pool, no_leaked_workers

from conveyor_sgl.runtime.run_tool import run_tool
from conveyor_sgl.tools.planner import PlannerTool
from conveyor_sgl.tools.planner_tasks import PlanError, TaskTools, parse_task, resolve_args

pytestmark = pytest.mark.timeout(90)
_leaks = pytest.fixture(autouse=True, name="no_leaked_workers")(no_leaked_workers)
_pool = pytest.fixture(name="pool")(fresh_pool)

PLAN = [
    "Thought: compute, then use the result twice.\n",
    '1. calculator("6 * 7")\n',
    '2. python("print(sum(range($1)))")\n',
    '3. calculator("$1 + 1")\n',
    "4. join($2, $3)\n",
    "<END_OF_PLAN>\n",
]
REPORT = (
    '1. calculator("6 * 7")\n   42\n'
    '2. python("print(sum(range($1)))")\n   861\n'
    '3. calculator("$1 + 1")\n   43\n'
    "4. join($2, $3)\n   861\n   43\n"
)


def test_task_lines_in_llmcompiler_format():
    task = parse_task('3. search("capital of ${1}") # why\n')
    assert (task.id, task.tool, task.deps) == (3, "search", frozenset({1}))
    assert resolve_args(task, {1: "France\n"}) == ["capital of France"]
    join = parse_task("4. join($1, $3)")
    assert join.deps == frozenset({1, 3})
    assert resolve_args(join, {1: "a", 3: "b"}) == ["a", "b"]
    assert parse_task("2. calculator(2.5)").args[0].value == 2.5


@pytest.mark.parametrize("line", ["Thought: think first", "<END_OF_PLAN>", "", "   "])
def test_lines_that_are_not_tasks(line):
    assert parse_task(line) is None


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('1. shell("rm -rf /")', "task 1: unknown tool 'shell'"),
        ("2. search($2)", r"task 2: refers to \$2, not an earlier task"),
        ('3. search("unclosed)', "task 3: bad arguments"),
        ('4. search(q="x")', "task 4: arguments must be positional literals"),
        ("5. search", "not a task call"),
    ],
)
def test_plan_errors_name_the_task(line, message):
    with pytest.raises(PlanError, match=message):
        parse_task(line)


def test_a_non_literal_argument_is_refused_when_run():
    task = parse_task("2. calculator(open)")
    with pytest.raises(PlanError, match="unsupported argument 'open'"):
        resolve_args(task, {})


def test_tools_run_in_process():
    tools = TaskTools({})
    assert tools.run("math", ["2 ** 10"]) == "1024"
    assert tools.run("python", ["x = 3\nprint(x * 'ab')"]) == "ababab\n"
    assert tools.run("join", ["a\n", " b"]) == "a\nb"
    assert tools.run("search", ["deserialize a json document"]).startswith("1. json.")


def test_the_plan_runs_in_dependency_order():
    out = drive(PlannerTool, PLAN).out
    assert (out.status, out.error, out.output) == ("ok", None, REPORT)


def test_a_failed_task_skips_its_dependents_and_is_named():
    plan = '1. calculator("1 / 0")\n2. calculator("$1 * 2")\n3. calculator("5")\n'
    out = drive(PlannerTool, plan).out
    assert out.status == "error"
    assert out.error == "task 1 (calculator): ZeroDivisionError: division by zero"
    assert '2. calculator("$1 * 2")\n   not run: a dependency failed\n' in out.output
    assert out.output.endswith('3. calculator("5")\n   5\n')


def test_a_reference_the_plan_never_defines_is_an_error():
    out = drive(PlannerTool, '1. calculator("1")\n3. join($1, $2)\n').out
    assert (out.status, out.error) == ("error", "task 3 (join): refers to $2, never defined")


def test_a_python_task_error_is_reported():
    out = drive(PlannerTool, '1. python("raise KeyError(5)")\n').out
    assert out.status == "error" and out.error.startswith("task 1 (python): KeyError: 5")


def test_a_task_still_running_at_the_deadline_is_an_error():
    plan = '1. python("import time\\ntime.sleep(3)")\n'
    out = drive(PlannerTool, plan, {"timeout_s": 0.3}).out
    assert (out.status, out.error) == ("error", "tasks [1] still running after 0.3s")


def test_duplicate_task_ids_are_an_error():
    out = drive(PlannerTool, '1. calculator("1")\n1. calculator("2")\n').out
    assert (out.status, out.error) == ("error", "task 1 is defined twice")


@pytest.mark.timing
def test_in_a_worker_tasks_run_while_the_plan_is_decoded(pool):
    # Task 1 prints the time it ran (CLOCK_MONOTONIC is shared by all processes).
    plan = [
        '1. python("import time\\nprint(time.monotonic())")\n',
        '2. calculator("1 + 1")\n',
        "3. join($1, $2)\n",
        "Thought: nothing more to do.\n",
    ]
    result = run_tool("planner", plan, pool=pool, chunk_interval=0.5)  # a busy host: slack
    assert result.status == "ok", result.error
    ran_at = float(result.output.splitlines()[1]) - result.t0
    assert ran_at < result.units[-1]["decoded_at"]  # before the plan's last line arrived


def test_independent_tasks_run_in_parallel():
    TaskTools({}).search("warm up")  # imports bm25s here, so the timing is the plan's alone
    plan = '1. search("json")\n2. search("regular expression")\n3. join($1, $2)\n'
    config = {"search": {"delay_ms": 1000, "top_k": 1}}
    t = time.monotonic()
    out = drive(PlannerTool, plan, config).out
    took = time.monotonic() - t
    assert out.status == "ok", out.error
    assert 1.0 <= took < 1.9, took  # two searches one after the other take at least 2 s
    assert out.output.count("\n   1. ") == 4  # each search's hit, twice more in the join


@pytest.mark.timing
def test_the_timeline_shows_each_task_and_what_it_waited_for(pool):
    plan = [
        "Thought: two waits, then both.\n",
        '1. python("import time\\ntime.sleep(0.3)")\n',
        '2. python("import time\\ntime.sleep(0.3)")\n',
        "3. join($1, $2)\n",
    ]
    result = run_tool("planner", plan, pool=pool)
    assert result.status == "ok", result.error
    thought, one, two, join = result.units
    assert (one["after"], two["after"], join["after"]) == ([], [], [1, 2])
    assert one["finished_at"] - one["started_at"] >= 0.3
    assert join["started_at"] >= max(one["finished_at"], two["finished_at"])
    assert thought["after"] is None  # not a task: its span is feed()'s


def test_in_a_worker_chunking_does_not_change_the_report(pool):
    text = "".join(PLAN)
    assert run_tool("planner", list(text), pool=pool).output == REPORT
