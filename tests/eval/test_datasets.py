"""The evaluation's datasets: counts, seeded samples, and every sampled reference accepted by
its tool (run for real in a confined worker, never in this process)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import pytest

from conveyor_sgl.runtime.run_tool import run_tool
from conveyor_sgl.runtime.workers.pool import WorkerPool, shutdown_default_pool
from conveyor_sgl.tools.planner_tasks import parse_task
from eval.datasets import GROUPS, bfcl, describe_group, load_group, search
from eval.datasets.agents import load_agents
from eval.datasets.bugs import mutations, seeded_bug
from eval.datasets.code_heavy import parse
from eval.datasets.planning import plan

pytestmark = pytest.mark.timeout(300)

COUNTS = {"code-light": 164, "planning": 113, "search": 1487 + 500}
AT_LEAST = {"code-heavy": 30, "validation": 30, "database": 30, "calculator": 30}


@pytest.fixture(scope="module")
def pool() -> Iterator[WorkerPool]:
    with WorkerPool(size=2) as workers:
        workers.wait_ready(10)
        yield workers
    shutdown_default_pool()  # seeded_bug's checks use the default pool


def run(w, pool):
    """The workload's reference through its tool, as decoding would feed it."""
    return run_tool(w.tool, w.reference, config=w.config, pool=pool, timeout=60)


@pytest.mark.parametrize("group", GROUPS)
def test_each_group_has_its_items_named_uniquely(group):
    items = load_group(group)
    if group in COUNTS:
        assert len(items) == COUNTS[group]
    else:
        assert len(items) >= AT_LEAST[group]
    assert len({w.name for w in items}) == len(items)
    for w in items:
        assert w.group == group and w.item and w.source
        assert w.end not in w.reference and w.expect in ("ok", "error", "aborted")


@pytest.mark.parametrize("group", GROUPS)
def test_a_seed_draws_the_same_sample_in_source_order(group):
    first, again = load_group(group, limit=6, seed=3), load_group(group, limit=6, seed=3)
    assert [w.name for w in first] == [w.name for w in again] and len(first) == 6
    other = load_group(group, limit=6, seed=4)
    assert [w.name for w in first] != [w.name for w in other]
    order = [w.name for w in load_group(group)]
    if group != "search":  # search takes an equal share of each source, each in order
        assert [order.index(w.name) for w in first] == sorted(order.index(w.name) for w in first)


def test_describe_group_names_source_license_and_what_is_modelled():
    for group in GROUPS:
        described = describe_group(group)
        assert {"source", "license", "url", "derived", "modelled", "real"} <= set(described)
    assert "700 ms" in describe_group("search")["modelled"]
    with pytest.raises(ValueError, match="unknown group"):
        describe_group("nope")


@pytest.mark.parametrize("group", ["code-light", "database", "calculator", "planning", "search"])
def test_sampled_references_run_ok_in_their_tool(group, pool):
    # A plan's first search loads the BM25 index in its worker (seconds): one plan suffices.
    for w in load_group(group, limit=1 if group == "planning" else 3, seed=11):
        config = {**w.config, "delay_ms": 0} if group == "search" else w.config
        if group == "planning":
            config = {**w.config, "search": {"delay_ms": 0, "top_k": 1}}
        result = run_tool(w.tool, w.reference, config=config, pool=pool, timeout=60)
        assert (result.status, result.error) == ("ok", None), (w.name, result.output)
        if group == "calculator":  # one result line per line of the reference
            assert len(result.output.splitlines()) == len(w.reference.splitlines())
        if group == "database":
            assert "row" in result.output


def test_code_heavy_programs_run_in_the_confined_worker(pool):
    # scikit-learn, pandas and numpy import and fit inside the sandbox (about 2 s each).
    for w in load_group("code-heavy", limit=3, seed=0):
        result = run(w, pool)
        assert result.status == "ok", (w.name, result.error, result.output[-2000:])
        assert result.output.strip()


def test_validation_items_pass_or_abort_at_the_perturbed_field(pool):
    items = load_group("validation")
    invalid = [w for w in items if w.expect == "aborted"]
    assert 0.2 < len(invalid) / len(items) < 0.4  # the fixed 30% share
    valid = [w for w in items if w.expect == "ok"]
    for w in load_group("validation", limit=2, seed=5) + valid[:2] + invalid[:4]:
        result = run(w, pool)
        assert result.status == w.expect, (w.name, w.description, result.error)
        if w.expect == "ok":
            assert json.loads(result.output) == json.loads(w.reference)
        else:
            key = re.search(r"at field \d+ of \d+: ('[^']*')", w.description)[1]
            assert key in result.error, (w.description, result.error)


def test_bfcl_types_become_json_schema():
    schema = bfcl.json_schema(
        {
            "type": "dict",
            "properties": {
                "x": {"type": "float"},
                "pair": {"type": "tuple", "items": {"type": "integer"}},
                "opts": {"type": "dict", "properties": {"a": {"type": "any"}}},
                "unit": {"type": "string", "enum": ["c", "f"]},
            },
            "required": ["x", "missing"],
        }
    )
    props = schema["properties"]
    assert schema["type"] == "object" and schema["additionalProperties"] is False
    assert schema["required"] == ["x"]
    assert props["x"] == {"type": "number"}
    assert props["pair"] == {"type": "array", "items": {"type": "integer"}}
    assert props["opts"]["properties"]["a"] == {} and "additionalProperties" not in props["opts"]
    assert props["unit"]["enum"] == ["c", "f"]
    assert bfcl.pick(["", 3]) == 3 and bfcl.pick([""]) == bfcl.EMPTY
    assert bfcl.pick([{"a": [1], "b": [""]}]) == {"a": 1}


def test_seeded_bug_fails_its_tests_and_is_deterministic(pool):
    item = load_group("code-light")[0]  # HumanEval/0
    buggy = seeded_bug(item, seed=0, pool=pool)
    assert buggy.expect == "error" and buggy.reference != item.reference
    assert seeded_bug(item, seed=0, pool=pool) == buggy
    result = run(buggy, pool)
    assert result.status == "error", result.output
    assert "Error" in result.error and not result.error.startswith("SyntaxError")
    # The asserts are top-level statements: the failing one leaves text undecoded.
    assert (
        "def check(" not in buggy.reference and "candidate = has_close_elements" in buggy.reference
    )


def test_mutations_swap_operators_names_and_numbers():
    found = {(old, new) for _, _, old, new in mutations("    return a < b and x[0] + 1\n")}
    assert {("<", "<="), ("and", "or"), ("+", "-"), ("0", "1"), ("1", "2")} <= found


def test_agent_items_are_well_formed_and_their_rounds_end_as_expected(pool):
    agents = load_agents()
    assert len(agents) >= 10 and len({a.name for a in agents}) == len(agents)
    assert [a.name for a in load_agents(limit=4, seed=2)] == [
        a.name for a in load_agents(limit=4, seed=2)
    ]
    for agent in agents:
        assert agent.group == "agents" and 3 <= len(agent.rounds) <= 5 and agent.prompt
    kinds = {agent.item.split("/")[0]: agent for agent in agents}
    assert set(kinds) == {"code", "data", "research"}
    code = kinds["code"]
    assert [r.expect for r in code.rounds] == ["error", "error", "ok"]
    for kind in ("code", "data", "research"):  # the benchmark's test runs only research
        for w in kinds[kind].rounds:
            config = w.config
            if w.tool == "search":
                config = {**config, "delay_ms": 0}
            if w.tool == "planner":
                config = {**config, "search": {"delay_ms": 0, "top_k": 1}}
            result = run_tool(w.tool, w.reference, config=config, pool=pool, timeout=60)
            assert result.status == w.expect, (w.name, result.error, result.output[-1000:])


def test_a_parallelqa_plan_has_a_search_and_math_per_branch():
    question = (
        "If Mariana Trench was 20% shallower and the Puerto Rico Trench was 20% deeper, "
        "which one would be shallower?"
    )
    assert plan(question) == (
        '1. search("Mariana Trench")\n'
        '2. math("1 - 20 / 100")\n'
        '3. search("Puerto Rico Trench")\n'
        '4. math("1 + 20 / 100")\n'
        '5. math("min($2, $4)")\n'
        "Thought: I can answer the question now.\n"
        "6. join($1, $2, $3, $4, $5)\n"
    )
    for w in load_group("planning"):  # every task line parses, every $N is an earlier task
        tasks = [parse_task(line) for line in w.reference.splitlines()]
        ids = [t.id for t in tasks if t is not None]
        assert ids == list(range(1, len(ids) + 1)) and tasks[-1].tool == "join"


def test_search_reads_the_two_things_compared():
    # The two examples of LLMCompiler's HotpotQA planner prompt.
    assert search.compared(
        "Which magazine was started first Arthur's Magazine or First for Women?"
    ) == ["Arthur's Magazine", "First for Women"]
    assert search.compared(
        "Were Pavel Urysohn and Leonid Levin known for the same type of work?"
    ) == ["Pavel Urysohn", "Leonid Levin"]
    movie = "Find a movie similar to A, B C\nOptions:\nD\nE\n"
    assert search.movie_queries(movie) == ["A", "B C", "D", "E"]


def test_code_heavy_header_names_source_and_task():
    fields, program = parse(
        "# Source: scikit-learn gallery, a long\n#   title (x.py)\n# Task: Fit.\n\nimport x\n"
    )
    assert fields == {"source": "scikit-learn gallery, a long title (x.py)", "task": "Fit."}
    assert program == "import x\n"
