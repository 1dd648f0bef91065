"""The Python tool's traceback is byte for byte what ``python program.py 2>&1`` prints.

Python's exit displays an uncaught exception in C, which the ``traceback`` module only
approximates: a source line that ends in spaces or tabs loses them there and its carets
shift (``^^^^`` under ``assert`` instead of the failing call), which points an agent at the
wrong expression. Each program here is run by CPython from a file and by the tool in a
tool worker (fed as a model streams it, through the real parser), and the outputs compared.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from conveyor_sgl.runtime.run_tool import run_tool

pytestmark = pytest.mark.timeout(300)

ENDS = {"spaces": "   ", "tab": "\t", "mixed": " \t  \t", "none": ""}
# {e} ends the lines that fail (and some around them).
PROGRAMS = {
    # The issue's case: a HumanEval check whose assert line ends in spaces.
    "assert_call": (
        "def candidate(x):\n    return 1 / x\n\ndef check(f):\n    assert f(0) == 1{e}\n\n"
        "check(candidate){e}\n"
    ),
    "call_spans_the_line": "def f():\n    raise ValueError('v'){e}\nf(){e}\n",
    "binary_operation": "a = 1\nb = 'x'\nc = a + b{e}\n",
    "parenthesised_operand": "a = 1\nc = (a) // (0){e}\n",
    "subscript": "rows = [[1]]\nvalue = rows[0] [3]{e}\n",
    "dict_key": "d = {{'a': 1}}\nprint(d['b']){e}\n",
    "attribute": "x = None\nx.total{e}\n",
    "comment_after": "x = None\nx.total  # why{e}\n",
    "tab_indented": "def f(x):\n\treturn x[9]{e}\nf([1]){e}\n",
    "multi_line_call": "value = int({e}\n    'abc'{e}\n){e}\n",
    "multi_line_operation": "def h(a, b):\n    return (a +{e}\n            b){e}\nh(1, None){e}\n",
    "multi_line_literal": "total = sum([{e}\n    1, 2,{e}\n    'x',{e}\n]){e}\n",
    "wide_characters": "label = '日本語'; n = label + 1{e}\n",
    "wide_in_multi_line": "data = {{'日本': 1}}\nv = (data['日本'] +{e}\n     data['x']){e}\n",
    "chained": (
        "try:\n    {{}}['a']{e}\nexcept KeyError as e:\n    raise ValueError('v') from e{e}\n"
    ),
    "library_frame": "import json\njson.loads('[1,'){e}\n",
    "form_feed": "\x0cx = 1 / 0{e}\n",
    "exception_group": "raise ExceptionGroup('g', [ValueError(1), TypeError(2)]){e}\n",
    # Compile errors: the whole program, as a file run reports it.
    "syntax_error": "print('a'){e}\nprint(1 +{e}\n",
    "syntax_error_tab_indented": "\tx = 1{e}\n",
    "syntax_error_tab_before_caret": "print(1,\t2 3){e}\n",
    "syntax_error_non_ascii": "x = 'é' 1{e}\n",
}
CASES = [(name, end) for name in PROGRAMS for end in ENDS]


def file_run(program: str, tmp_path: Path) -> tuple[str, int]:
    path = tmp_path / "program.py"
    path.write_bytes(program.encode("utf-8"))
    proc = subprocess.run(
        [sys.executable, str(path)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        check=False,
        cwd=tmp_path,
        env={**os.environ, "PYTHONIOENCODING": "utf-8", "PYTHONPATH": ""},
        timeout=60,
    )
    return proc.stdout.decode("utf-8").replace(str(path), "<tool>"), proc.returncode


@pytest.mark.parametrize(("name", "end"), CASES, ids=[f"{n}-{e}" for n, e in CASES])
def test_the_traceback_is_a_file_runs_byte_for_byte(name, end, tmp_path):
    program = PROGRAMS[name].format(e=ENDS[end])
    expected, code = file_run(program, tmp_path)
    assert code != 0 and "Error" in expected  # each program fails
    chunks = [program[i : i + 5] for i in range(0, len(program), 5)]  # as a model streams it
    result = run_tool("python", chunks)
    assert result.status == "error"
    assert result.output.encode("utf-8") == expected.encode("utf-8")


def test_the_issues_case_points_at_the_failing_call(tmp_path):
    program = PROGRAMS["assert_call"].format(e="   ")
    lines = run_tool("python", program).output.splitlines()
    at = lines.index("    assert f(0) == 1   ")  # the line as written, its end included
    assert lines[at + 1] == "           ^^^^"  # under f(0), not under "assert"
