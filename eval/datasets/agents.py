"""Multi-turn agent items: 3-5 rounds of tool call -> result -> next call, built from the
single-call items of the other groups (the runner writes the program that plays them).

Three kinds, each a pattern of real agents:
- ``code``: a HumanEval task whose first two attempts have a seeded bug each (their tests
  fail, the traceback is the next round's input) and whose third attempt passes;
- ``data``: a code-interpreter session on one scikit-learn dataset (code-heavy), then SQL
  questions over the same data (database), then a computation with the calculator;
- ``research``: a ParallelQA question: search the entities it names (search), plan the full
  answer (planning), then compute the answer from the question's numbers (calculator).

Each round is a ``Workload``: its prompt is the instruction of that turn, its reference the
tool call, and its ``suffix`` + tool result + ``answer`` the text between this round's call
and the next. The items are fixed (drawn once with a fixed seed); ``load_agents`` samples.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, replace

from eval.datasets import (
    bugs,
    code_heavy,
    database,
    humaneval,
    llmcompiler,
    parallelqa_parse,
    planning,
    search,
)
from eval.datasets import calculator as calculator_items
from eval.datasets.sampling import rng, sample
from eval.workload import Workload

GROUP = "agents"
_SEED = "agents-v1"
_PER_KIND = 4
_PLAN = "Now I will plan the whole answer."
_COMPUTE = "Now the arithmetic."


@dataclass(frozen=True, kw_only=True)
class AgentItem:
    name: str
    item: str
    prompt: str  # the user's task, before round 1
    rounds: tuple[Workload, ...]
    description: str
    source: str
    group: str = GROUP

    def __post_init__(self) -> None:
        if not 3 <= len(self.rounds) <= 5:
            raise ValueError(f"{self.name}: {len(self.rounds)} rounds (an agent item has 3-5)")


def _round(w: Workload, prompt: str, answer: str | None = None) -> Workload:
    return replace(w, prompt=prompt, answer=answer or w.answer)


def code_agent(task_id: str) -> AgentItem:
    """Two buggy attempts (different seeded bugs), then the canonical solution."""
    problem = humaneval.problems()[task_id]
    base = humaneval.workload(problem, humaneval.program(problem))
    first = bugs.seeded_bug(base, 0)
    second = next(
        b for s in range(1, 8) if (b := bugs.seeded_bug(base, s)).reference != first.reference
    )
    fix = "The tests failed. Read the traceback, fix the bug and run the tests again."
    rounds = (
        _round(first, base.prompt),
        _round(second, fix),
        _round(bugs.fixed(base), fix),
    )
    return AgentItem(
        name=f"{GROUP}:code/{task_id}",
        item=f"code/{task_id}",
        prompt=base.prompt,
        rounds=rounds,
        description=f"{task_id}: two attempts with seeded bugs fail their tests, the third "
        f"passes ({first.description.split('(')[1].split(')')[0]}; "
        f"{second.description.split('(')[1].split(')')[0]})",
        source=humaneval.SOURCE,
    )


def data_agent(dataset: str, heavy: list[Workload], sql: list[Workload], calc: Workload):
    program = heavy[0]
    rounds = (
        _round(program, program.prompt, "Now the same data in the database."),
        *(_round(w, w.prompt, "Next question.") for w in sql[:-1]),
        _round(sql[-1], sql[-1].prompt, "Now a computation with the calculator."),
        _round(calc, calc.prompt),
    )
    return AgentItem(
        name=f"{GROUP}:data/{dataset}",
        item=f"data/{dataset}",
        prompt=f"Analyse the {dataset.replace('_', ' ')} data: {program.prompt}",
        rounds=rounds,
        description=f"{dataset}: {program.item} (python), "
        f"{', '.join(w.item for w in sql)} (sql), {calc.item} (calculator)",
        source=f"{program.source}; {sql[0].source}; {calc.source}",
    )


def research_agent(item: dict) -> AgentItem:
    """Search the entities, plan the answer, compute it from the question's numbers."""
    question = item["question"]
    entities = list(dict.fromkeys(parallelqa_parse.mentions(question)))
    factors = parallelqa_parse.factors(question)
    names = {e: re.sub(r"\W+", "_", e.lower()).strip("_") for e in entities}
    lines = [f"{names[e]} = {factors[e]}" for e in entities if e in factors]
    lines.append(planning.combine(question, [names[e] for e in entities if e in factors]))
    found = search.workload("parallelqa", item, entities)
    plan = planning.workload(item)
    calc = Workload(
        name=f"calculator:parallelqa/{item['id']}",
        group="calculator",
        item=f"parallelqa/{item['id']}",
        tool="calculator",
        prompt="Compute the answer from the question's numbers, one expression per line.",
        reference="".join(line + "\n" for line in lines),
        source=plan.source,
        config={"precision": 10},
        prefix="```\n",
        end="```",
        suffix="```\nResult:\n",
        answer=plan.answer,
    )
    rounds = (
        _round(found, f"Question: {question}\nFirst search for each thing it names.", _PLAN),
        _round(plan, "Now plan the whole answer with search, math and join.", _COMPUTE),
        calc,
    )
    return AgentItem(
        name=f"{GROUP}:research/parallelqa/{item['id']}",
        item=f"research/parallelqa/{item['id']}",
        prompt=f"Question: {question}",
        rounds=rounds,
        description=f"ParallelQA {item['id']}: {len(entities)} searches, a plan, "
        f"{len(lines)} calculator lines",
        source=plan.source,
    )


_DATASETS = ("iris", "wine", "diabetes", "breast_cancer")
# BFCL exec_simple statistics questions: the computation a data session ends with.
_STATISTICS = ("exec_simple_14", "exec_simple_15", "exec_simple_18", "exec_simple_19",
               "exec_simple_82", "exec_simple_83")  # fmt: skip


def _code_agents() -> list[AgentItem]:
    ids = list(humaneval.problems())
    rng(f"{_SEED}:code").shuffle(ids)
    out: list[AgentItem] = []
    for task_id in ids:
        try:
            out.append(code_agent(task_id))
        except (ValueError, StopIteration):
            continue  # fewer than two distinct seeded bugs fail its tests
        if len(out) == _PER_KIND:
            return out
    raise AssertionError("not enough HumanEval problems with two seeded bugs")


def _data_agents() -> list[AgentItem]:
    r = rng(f"{_SEED}:data")
    heavy, sql = code_heavy.load(), database.load()
    calc = {w.item: w for w in calculator_items.load()}
    out = []
    for dataset in _DATASETS:
        programs = [w for w in heavy if w.item.startswith(dataset)]
        questions = [w for w in sql if w.item.startswith(f"{dataset}/")]
        chosen = sorted(r.sample(range(len(questions)), 2))
        out.append(
            data_agent(
                dataset,
                [r.choice(programs)],
                [questions[i] for i in chosen],
                calc[r.choice(_STATISTICS)],
            )
        )
    return out


def _research_agents() -> list[AgentItem]:
    scaled = [
        x for x in llmcompiler.dataset("parallelqa")
        if len(parallelqa_parse.factors(x["question"])) >= 2
    ]  # fmt: skip
    return [research_agent(x) for x in sample(scaled, _PER_KIND, 0)]


@functools.cache
def _all_agents() -> tuple[AgentItem, ...]:
    # The code agents' bugs are checked in a confined worker: built once per process.
    return (*_code_agents(), *_data_agents(), *_research_agents())


def load_agents(limit: int | None = None, seed: int = 0) -> list[AgentItem]:
    """The agent items (4 code, 4 data, 4 research), or a seeded sample of ``limit``."""
    return sample(_all_agents(), limit, seed)
