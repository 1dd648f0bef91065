"""calculator: the math questions of BFCL's executable category, worked with the calculator.

Source: BFCL v4 ``exec_simple`` (shipped in the bfcl-eval wheel under
``data/unused_datasets``; see ``bfcl``): 100 word problems, each with its ground-truth call
(``calc_binomial_probability(n=20, k=5, p=0.6)``). The items are those whose function is
arithmetic (26 functions, 52 questions; look-ups such as stock prices or weather are left
out). The reference is the calculator lines that compute the call's result from its
arguments (``calculator_formulas``): assignments first, the formula last, one line each.
"""

from __future__ import annotations

import ast
from typing import Any

from eval.datasets import bfcl
from eval.datasets.calculator_formulas import FORMULAS
from eval.workload import Workload

GROUP = "calculator"


def parse_call(text: str) -> tuple[str, dict[str, Any]]:
    """``"f(a=1, b=[2, 3])"`` -> ("f", {"a": 1, "b": [2, 3]}); literals only, never run."""
    call = ast.parse(text, mode="eval").body
    assert isinstance(call, ast.Call) and isinstance(call.func, ast.Name), text
    return call.func.id, {kw.arg: ast.literal_eval(kw.value) for kw in call.keywords if kw.arg}


def workload(question: dict[str, Any], answer: dict[str, Any]) -> Workload | None:
    name, args = parse_call(answer["ground_truth"][0])
    formula = FORMULAS.get(name)
    if formula is None:
        return None
    lines = formula(**args)
    return Workload(
        name=f"{GROUP}:{question['id']}",
        group=GROUP,
        item=question["id"],
        tool="calculator",
        prompt=(
            f"{bfcl.user_message(question)}\n\nWork it out with the calculator: one "
            "expression or assignment per line."
        ),
        reference="".join(line + "\n" for line in lines),
        description=f"BFCL exec_simple {question['id']}: {answer['ground_truth'][0]}",
        source=bfcl.CITATION + "/unused_datasets/BFCL_v4_exec_simple.json; formulas written "
        "for this benchmark",
        config={"precision": 10},
        prefix="```\n",
        end="```",
        suffix="```\nResult:\n",
        answer=f"That is the {name.replace('_', ' ')} result.",
    )


def load() -> list[Workload]:
    items = (workload(q, a) for q, a in bfcl.category("exec_simple", unused=True))
    return [item for item in items if item is not None]
