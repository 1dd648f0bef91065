"""``seeded_bug``: a HumanEval solution with one seeded mutation that makes its tests fail.

The mutation is one token of the canonical solution, as a slip a programmer makes: a
comparison off by one (``<`` for ``<=``), a flipped operator (``+``/``-``, ``==``/``!=``,
``and``/``or``, ``in``/``not in``), a neighbouring name (``min``/``max``, ``lower``/``upper``,
``int``/``float``), a number literal off by one. Candidates are tried in an
order drawn from the seed; each is run in a confined Python worker (never in this process)
and the first one whose tests fail with an exception (an ``AssertionError`` or any other,
not a syntax error, not a hang) is the bug. The program is ``humaneval.inline_program``: the
tests' asserts at top level, so the failure stops the program where early abort can save
the rest of the decoding.
"""

from __future__ import annotations

import functools
import io
import tokenize
from dataclasses import replace
from typing import Any

from eval.datasets import humaneval
from eval.datasets.sampling import rng
from eval.workload import Workload

_SWAPS = {
    "<": "<=", "<=": "<", ">": ">=", ">=": ">", "==": "!=", "!=": "==",
    "+": "-", "-": "+", "*": "+", "//": "/", "+=": "-=", "-=": "+=",
    "%": "//", "/": "//", "**": "*", "in": "not in",
    "and": "or", "or": "and", "True": "False", "False": "True", "min": "max", "max": "min",
    "lower": "upper", "upper": "lower", "startswith": "endswith", "endswith": "startswith",
    "int": "float", "float": "int", "set": "list", "sorted": "reversed",
}  # fmt: skip
_VERIFY_TIMEOUT_S = 10.0
_VERIFY_LIMITS = {"cpu_s": 3}  # a mutation that loops forever is refused, not waited for
# Not a failing test: the program does not compile, or the sandbox stopped it (CPU, memory).
_NOT_A_TEST_FAILURE = ("SyntaxError", "IndentationError", "MemoryError", "conveyor_sgl.")


def mutations(solution: str) -> list[tuple[int, int, str, str]]:
    """Every one-token mutation of ``solution``: (line, column, token, replacement)."""
    out = []
    for tok in tokenize.generate_tokens(io.StringIO(solution).readline):
        if tok.type in (tokenize.OP, tokenize.NAME) and tok.string in _SWAPS:
            out.append((*tok.start, tok.string, _SWAPS[tok.string]))
        elif tok.type == tokenize.NUMBER and tok.string.isdigit():
            out.append((*tok.start, tok.string, str(int(tok.string) + 1)))
        elif tok.type == tokenize.NUMBER and tok.string.replace(".", "", 1).isdigit():
            out.append((*tok.start, tok.string, str(float(tok.string) + 1)))
    return out


def apply(solution: str, mutation: tuple[int, int, str, str]) -> str:
    line, col, old, new = mutation
    lines = solution.splitlines(keepends=True)
    text = lines[line - 1]
    assert text[col : col + len(old)] == old, (mutation, text)
    lines[line - 1] = text[:col] + new + text[col + len(old) :]
    return "".join(lines)


def seeded_bug(item: Workload, seed: int = 0, pool: Any = None) -> Workload:
    """``item`` (a HumanEval workload) with a seeded bug that fails its tests (expect error)."""
    return _seeded_bug(item.item, seed, pool)


@functools.cache
def _seeded_bug(task_id: str, seed: int, pool: Any) -> Workload:
    from conveyor_sgl.runtime.run_tool import run_tool  # starts workers: only when used

    problem = humaneval.problems()[task_id]
    solution = problem["canonical_solution"]
    candidates = mutations(solution)
    rng(f"{task_id}:{seed}").shuffle(candidates)
    for mutation in candidates:
        buggy = apply(solution, mutation)
        reference = humaneval.inline_program(problem, buggy)
        result = run_tool(
            "python", reference, timeout=_VERIFY_TIMEOUT_S, pool=pool, limits=_VERIFY_LIMITS
        )
        if _fails_its_tests(result.status, result.error or ""):
            line, col, old, new = mutation
            where = f"solution line {line}, column {col}: {old!r} -> {new!r}"
            base = humaneval.workload(problem, reference)
            return replace(
                base,
                name=f"{humaneval.GROUP}:{task_id}:bug{seed}",
                description=f"{task_id} with a seeded bug ({where}); its tests fail: "
                f"{result.error}",
                expect="error",
                answer="The tests failed; I will fix the bug.",
            )
    raise ValueError(f"{task_id}: no one-token mutation makes its tests fail")


def _fails_its_tests(status: str, error: str) -> bool:
    return status == "error" and not error.startswith(_NOT_A_TEST_FAILURE)


def fixed(item: Workload) -> Workload:
    """The canonical solution with the inline tests: the attempt that passes after a bug."""
    problem = humaneval.problem_of(item)
    base = humaneval.workload(problem, humaneval.inline_program(problem))
    return replace(
        base,
        name=f"{humaneval.GROUP}:{item.item}:inline",
        description=f"{item.item}: the canonical solution, its asserts at top level.",
    )
