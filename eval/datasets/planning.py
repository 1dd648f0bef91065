"""planning: one LLMCompiler plan per ParallelQA question (all 113), in the planner's format.

For each entity the question names (in order): ``search("<entity>")``, then, if the question
scales it, ``math("<its factor>")`` (``1 - 20 / 100`` for "20% shallower"); then one math task
that combines the factors as the question asks (``min``, ``max``, a ratio, a difference, an
average, a total); then ``Thought: I can answer the question now.`` and ``join`` of every
task. So the plan has as many search branches as the question names entities (ParallelQA's
``branch`` count, or one more where pairs share an entity) and its math depends on earlier
math, as LLMCompiler's plans do.

What differs from LLMCompiler, and why: its ``math("question", ["$1"])`` is an LLM call that
reads the search text; the planner's math is a calculator, so it gets the question's own
numbers and never waits for a search (it is instant; the plan's end still waits for every
search through ``join``). Questions that scale nothing (pairwise ratios and differences) get
searches and ``join`` only. Search latency is MODELLED (700 ms per query); the math tasks
really run in the calculator.
"""

from __future__ import annotations

import re
from typing import Any

from eval.datasets import llmcompiler, parallelqa_parse
from eval.workload import Workload

GROUP = "planning"
CONFIG = {"search": {"delay_ms": 700, "top_k": 1}, "concurrency": 4}
_MIN = re.compile(r"smallest|smaller|least|shortest|shallower|slowest|minimum|shorter|lowest")
_LARGEST = re.compile(r"largest|tallest|longest|greatest|biggest|fastest|deepest")


def combine(question: str, refs: list[str]) -> str:
    """The calculator expression that answers ``question`` from the scaled values."""
    q = question.lower()
    args = ", ".join(refs)
    two = len(refs) == 2
    if "average" in q:
        return f"({' + '.join(refs)}) / {len(refs)}"
    if "combined" in q or "total" in q:
        return " + ".join(refs)
    if "ratio" in q or "how many times" in q:
        return (
            f"{refs[0]} / {refs[1]}"
            if two and not _LARGEST.search(q)
            else (f"max({args}) / min({args})")
        )
    if "difference" in q or "how much" in q:
        return f"abs({refs[0]} - {refs[1]})" if two else f"max({args}) - min({args})"
    return f"min({args})" if _MIN.search(q) else f"max({args})"


def plan(question: str) -> str:
    factors = parallelqa_parse.factors(question)
    lines: list[str] = []
    scaled: list[str] = []
    for entity in dict.fromkeys(parallelqa_parse.mentions(question)):
        lines.append(f'{len(lines) + 1}. search("{entity}")')
        if entity in factors:
            lines.append(f'{len(lines) + 1}. math("{factors[entity]}")')
            scaled.append(f"${len(lines)}")
    if len(scaled) >= 2:
        lines.append(f'{len(lines) + 1}. math("{combine(question, scaled)}")')
    refs = ", ".join(f"${i}" for i in range(1, len(lines) + 1))
    lines += ["Thought: I can answer the question now.", f"{len(lines) + 1}. join({refs})"]
    return "\n".join(lines) + "\n"


def workload(item: dict[str, Any]) -> Workload:
    reference = plan(item["question"])
    searches = reference.count("search(")
    maths = reference.count("math(")
    return Workload(
        name=f"{GROUP}:parallelqa/{item['id']}",
        group=GROUP,
        item=f"parallelqa/{item['id']}",
        tool="planner",
        prompt=(
            f"Question: {item['question']}\nPlan the tool calls that answer it with the "
            "tools search, math and join, in LLMCompiler's format."
        ),
        reference=reference,
        description=(
            f"ParallelQA {item['id']} (branch {item['branch']}): {searches} searches, "
            f"{maths} math tasks, join"
        ),
        source=f"ParallelQA, {llmcompiler.CITATION}",
        config=CONFIG,
        prefix="Plan:\n",
        end="<END_OF_PLAN>",
        suffix="<END_OF_PLAN>\nObservations:\n",
        answer=f"The answer is {item['answer']}.",
    )


def load() -> list[Workload]:
    return [workload(item) for item in llmcompiler.dataset("parallelqa")]
