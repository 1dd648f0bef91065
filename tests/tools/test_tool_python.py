"""The Python tool run statement by statement equals a whole-program run.

Model-written code never runs in the pytest process: the tool runs in a driver subprocess (or
a tool worker, through ``run_tool``), and the reference runs the whole program with
``exec(compile(program, "<tool>", "exec"), namespace)`` in another subprocess, with the same
capture and error formatting (``python_exec``), so that only execution differences show.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from conveyor_sgl.tools.python import PythonTool

REPO = Path(__file__).resolve().parents[2]

# Runs PythonTool on units given as [text, lineno] pairs, or on chunks cut by the real
# parser; after each feed it lists the working directory, to see when statements ran.
DRIVER = r"""
import json, os, sys
from conveyor_sgl.parsers.base import Unit
from conveyor_sgl.tools.python import PythonTool

req = json.load(sys.stdin)
if req["chunks"] is not None:
    from conveyor_sgl.parsers import make_parser, parse_chunks
    units = parse_chunks(make_parser("python"), req["chunks"])
else:
    units, pos = [], 0
    for text, lineno in req["units"]:
        units.append(Unit(text, pos, pos + len(text), {"lineno": lineno}))
        pos += len(text)
tool = PythonTool()
tool.start(req["config"])
listings = []
for i, unit in enumerate(units):
    if i == req["cancel_after"]:
        tool.cancel()
    tool.feed(unit)
    listings.append(sorted(os.listdir(".")))
out = tool.finish()
result = {"output": out.output, "status": out.status, "error": out.error}
result["listings"] = listings
with open(sys.argv[1], "w") as f:
    json.dump(result, f)
"""

# The reference: the whole program at once, captured and reported by the same helpers.
RUNNER = r"""
import json, sys
from conveyor_sgl.tools import python_exec as px
from conveyor_sgl.tools.python_exit import finalize
from conveyor_sgl.tools.python_report import report

program = sys.stdin.read()
limit = json.loads(sys.argv[2]).get("max_output_bytes", px.DEFAULT_MAX_OUTPUT_BYTES)
lines = px.split_lines(program)
px.register_source(lines)
sink = px.Sink(limit)
view = px.ProcessView(sink)
ran = False
with view.installed():
    try:
        code = compile(program, px.FILENAME, "exec", dont_inherit=True)
    except Exception as exc:
        outcome = px.compile_outcome(exc, lines)
    else:
        ran = True
        try:
            exec(code, view.namespace)
        except BaseException as exc:
            view.last_exception = exc
            outcome = px.runtime_outcome(exc)
        else:
            outcome = px.OK
if ran:  # Python prints the traceback, then finalizes what the program left behind
    sink.end = sink.total
    finalize(view)
out = report(outcome, "", sink, limit)
with open(sys.argv[1], "w") as f:
    json.dump({"output": out.output, "status": out.status, "error": out.error}, f)
"""


def _python(code: str, stdin: str, cwd: Path, *args: str) -> dict[str, Any]:
    result_file = cwd / ".result.json"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("PYTHONWARNINGS", None)
    proc = subprocess.run(
        [sys.executable, "-c", code, str(result_file), *args],
        input=stdin,
        check=False,
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(result_file.read_text())
    result_file.unlink()
    return result


def run_partial(
    program: str,
    cwd: Path,
    config: dict[str, Any] | None = None,
    via_parser: bool = False,
    cancel_after: int | None = None,
) -> dict[str, Any]:
    request = {
        "units": None if via_parser else statements(program),
        "chunks": _chunks(program) if via_parser else None,
        "config": config or {},
        "cancel_after": cancel_after,
    }
    return _python(DRIVER, json.dumps(request), cwd)


def run_whole(program: str, cwd: Path, config: dict[str, Any] | None = None) -> dict[str, Any]:
    return _python(RUNNER, program, cwd, json.dumps(config or {}))


def statements(program: str) -> list[tuple[str, int]]:
    """Top-level statements and their first lines; blank and comment lines between them are
    left out, so line numbers must come from ``lineno``, not from counting."""
    lines = program.splitlines(keepends=True)
    try:
        body = ast.parse(program).body
    except SyntaxError:
        return _statements_by_lines(lines)
    spans: list[list[int]] = []
    for node in body:
        first = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
        if spans and first <= spans[-1][1]:  # two statements on one line: one unit
            spans[-1][1] = max(spans[-1][1], node.end_lineno)
        else:
            spans.append([first, node.end_lineno])
    return [("".join(lines[a - 1 : b]), a) for a, b in spans]


def _statements_by_lines(lines: list[str]) -> list[tuple[str, int]]:
    # For programs that do not parse: a statement starts at a column-0 line.
    units: list[tuple[str, int]] = []
    for n, line in enumerate(lines, 1):
        starts = line[:1] not in ("", " ", "\t", "\n", "#", ")", "]", "}")
        if starts and not line.startswith(("else", "elif", "except", "finally")):
            units.append((line, n))
        elif units:
            units[-1] = (units[-1][0] + line, units[-1][1])
    return units


def _chunks(program: str, size: int = 7) -> list[str]:
    return [program[i : i + size] for i in range(0, len(program), size)]


def _src(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


CORPUS = {
    "prints": """
        print("hello")
        print(1, 2, 3, sep="-", end="!\\n")
        print()
    """,
    "loops": """
        total = 0
        for i in range(5):
            total += i
            print(i, total)
        while total > 0:
            total -= 4
        else:
            print("done", total)
    """,
    "functions_across_units": """
        def double(x):
            return 2 * x

        # a comment between statements

        def apply(f, xs):
            return [f(x) for x in xs]
        print(apply(double, [1, 2, 3]))
    """,
    "decorators_and_multiline": """
        import functools

        @functools.lru_cache(maxsize=None)
        def fib(n):
            return n if n < 2 else fib(n - 1) + fib(n - 2)

        values = [
            fib(10),
            fib(20),
        ]
        print(values)
    """,
    "classes": """
        from dataclasses import dataclass, field

        @dataclass
        class Point:
            x: int
            y: int = 0
            tags: list = field(default_factory=list)

            def norm1(self):
                return abs(self.x) + abs(self.y)

        class Shape:
            def __repr__(self):
                return f"<{type(self).__name__}>"

        p = Point(3, -4)
        print(p, p.norm1(), Shape())
    """,
    "error_at_first_statement": """
        1 / 0
        print("never")
    """,
    "error_in_the_middle": """
        print("before")
        items = [1, 2, 3]


        print(items[10])
        print("never")
    """,
    "error_at_last_statement": """
        print("a")
        print("b")
        {}["missing"]
    """,
    "error_in_function_called_later": """
        def divide(a, b):
            return a / b

        def report(a, b):
            return f"{a}/{b} = {divide(a, b)}"

        print(report(1, 2))
        print(report(1, 0))
        print("never")
    """,
    "name_error": """
        x = 1
        print(x + undefined_name)
    """,
    "custom_exception_and_chain": """
        class BadInput(ValueError):
            pass

        def parse(s):
            try:
                return int(s)
            except ValueError as e:
                raise BadInput(f"not a number: {s!r}") from e

        print(parse("12"))
        parse("x")
    """,
    "handled_exception_with_traceback": """
        import traceback

        def f():
            raise KeyError("k")

        try:
            f()
        except KeyError:
            traceback.print_exc()
        print("still running")
    """,
    "keyboard_interrupt": """
        print("working")
        raise KeyboardInterrupt
    """,
    "syntax_error_in_the_middle": """
        print("a")
        x = (1,
        print("b")
    """,
    "syntax_error_bad_def": """
        print("a")
        def f(:
            pass
        print("b")
    """,
    "indentation_error": """
        print("a")
        if True:
        print("b")
    """,
    "compile_error_then_parser_error": """
        print("a")
        return 5
        print("b")
        y = ]
    """,
    "late_future_import": """
        import os
        from __future__ import annotations
        print("a")
    """,
    "global_clash": """
        counter = 1
        global counter
        print(counter)
    """,
    "global_in_function": """
        counter = 0

        def bump():
            global counter
            counter += 1

        bump()
        bump()
        print(counter)
    """,
    "sys_exit_code": """
        import sys
        print("a")
        sys.exit(3)
        print("never")
    """,
    "sys_exit_message": """
        import sys
        print("a")
        sys.exit("fatal: bad input")
        print("never")
    """,
    "sys_exit_zero": """
        import sys
        print("a")
        sys.exit(0)
        print("never")
    """,
    "raise_system_exit": """
        print("a")
        raise SystemExit
    """,
    "exit_builtin": """
        print("a")
        exit(2)
    """,
    "stderr_interleaved": """
        import sys
        print("out 1")
        print("err 1", file=sys.stderr)
        sys.stdout.write("out 2\\n")
        sys.stderr.write("err 2\\n")
        print("out 3", flush=True)
    """,
    "unicode_output": """
        print("héllo ✓ 日本語 🎉")
        print("\\u00e9" * 3)
        s = "naïve"
        print(s.upper(), len(s))
    """,
    "lone_surrogate": """
        print("ok")
        print("\\ud800")
    """,
    "surrogate_in_exception_message": """
        print("ok")
        raise ValueError("bad \\ud800 char")
    """,
    "bytes_to_stdout": """
        import sys
        print("text")
        sys.stdout.buffer.write(b"raw bytes\\n")
        print("more text")
    """,
    "main_guard": """
        def main():
            print("in main", __name__)

        if __name__ == "__main__":
            main()
    """,
    "argparse_in_main": """
        import argparse

        def main():
            parser = argparse.ArgumentParser()
            parser.add_argument("--n", type=int, default=3)
            args = parser.parse_args()
            print(args.n)

        if __name__ == "__main__":
            main()
    """,
    "future_annotations": """
        from __future__ import annotations

        def f(x: Undefined) -> AlsoUndefined:
            return x

        print(f(1), f.__annotations__)
    """,
    "docstring_then_future": '''
        """Module docstring."""
        from __future__ import annotations
        from __future__ import division
        print(__doc__)

        def g(a: Nope):
            return a
        print(g.__annotations__)
    ''',
    "later_string_is_no_docstring": """
        x = 1
        "not a docstring"
        print(__doc__)
    """,
    "string_after_future_is_no_docstring": """
        from __future__ import annotations
        "not a docstring"
        print(__doc__)
    """,
    "input_without_stdin": """
        print("start")
        name = input("name? ")
        print("never", name)
    """,
    "replaced_stdout_carries_over": """
        import io, sys
        buf = io.StringIO()
        old, sys.stdout = sys.stdout, buf
        print("hidden")
        sys.stdout = old
        print(buf.getvalue().upper(), end="")
    """,
    "runtime_warning": """
        import warnings
        print("a")
        warnings.warn("careful")
        print("b")
    """,
    "compile_warning_comes_first": """
        print("first")
        x = 1
        print(x is 1)
    """,
    "inspect_source_of_earlier_function": """
        import inspect

        def area(r):
            return 3.14 * r * r

        print(inspect.getsource(area))
    """,
    "pickle_program_class": """
        import pickle

        class Box:
            def __init__(self, v):
                self.v = v

        print(pickle.loads(pickle.dumps(Box(5))).v)
    """,
    "type_hints_of_program_class": """
        from __future__ import annotations
        import typing

        class Node:
            next: Node | None = None

        print(typing.get_type_hints(Node))
    """,
    "semicolons_and_one_line_blocks": """
        a = 1; b = 2
        if a: print("a is", a)
        for i in range(2): print(i)
        print(a + b); 1 / 0
    """,
    "warning_after_error": """
        1 / 0
        x = 1
        print(x is 1)
    """,
    "warning_then_compile_error": """
        x = 1
        print(x is 1)
        return x
    """,
    "program_warning_filters_do_not_reach_compile": """
        import warnings
        warnings.simplefilter("error")
        x = 1
        print(x is 1)
    """,
    "lost_stdout": """
        import sys
        print("a")
        del sys.stdout
        print("b")
    """,
    "cleared_linecache": """
        import linecache
        linecache.clearcache()
        1 / 0
    """,
    "empty_program": "",
    "comments_only": """
        # nothing to run
    """,
}


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_partial_equals_whole(name: str, tmp_path: Path) -> None:
    program = _src(CORPUS[name])
    partial = run_partial(program, tmp_path)
    whole = run_whole(program, tmp_path)
    assert {k: partial[k] for k in whole} == whole


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_partial_equals_whole_with_real_parser(name: str, tmp_path: Path) -> None:
    program = _src(CORPUS[name])
    partial = run_partial(program, tmp_path, via_parser=True)
    whole = run_whole(program, tmp_path)
    assert {k: partial[k] for k in whole} == whole


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_partial_equals_whole_in_a_worker(name: str, tmp_path: Path) -> None:
    run_tool = _run_tool()
    program = _src(CORPUS[name])
    result = run_tool("python", _chunks(program), partial=True, timeout=30)
    whole = run_whole(program, tmp_path)
    assert (result.status, result.error, result.output) == (
        whole["status"],
        whole["error"],
        whole["output"],
    )


def _run_tool():
    return pytest.importorskip("conveyor_sgl.runtime.run_tool").run_tool


TERMINAL_CASES = [
    "error_in_function_called_later",
    "custom_exception_and_chain",
    "syntax_error_in_the_middle",
    "late_future_import",
    "sys_exit_message",
    "input_without_stdin",
    "stderr_interleaved",
    "compile_warning_comes_first",
    "unicode_output",
]


@pytest.mark.parametrize("name", TERMINAL_CASES)
def test_output_is_what_a_terminal_shows(name: str, tmp_path: Path) -> None:
    """``output`` is ``python -u program.py 2>&1 < /dev/null``, file name aside."""
    program = _src(CORPUS[name])
    path = tmp_path / "prog.py"
    path.write_text(program)
    proc = subprocess.run(
        [sys.executable, "-u", str(path)],
        stdin=subprocess.DEVNULL,
        check=False,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        cwd=tmp_path,
        env={**os.environ, "PYTHONIOENCODING": "utf-8"},
        timeout=60,
    )
    terminal = proc.stdout.decode().replace(str(path), "<tool>")
    result = run_partial(program, tmp_path)
    assert result["output"] == terminal
    assert (result["status"] == "ok") == (proc.returncode == 0)


def test_runtime_error_format(tmp_path: Path) -> None:
    result = run_partial('print("a")\n\n# why\n1/0\nprint("b")\n', tmp_path)
    assert result["status"] == "error"
    assert result["error"] == "ZeroDivisionError: division by zero"
    assert result["output"] == (
        "a\n"
        "Traceback (most recent call last):\n"
        '  File "<tool>", line 4, in <module>\n'
        "    1/0\n"
        "    ~^~\n"
        "ZeroDivisionError: division by zero\n"
    )


def test_syntax_error_format_hides_earlier_output(tmp_path: Path) -> None:
    result = run_partial('print("a")\nopen("ran.txt", "w").close()\nx = (\n', tmp_path)
    assert result["status"] == "error"
    assert result["error"] == "SyntaxError: '(' was never closed (<tool>, line 3)"
    assert result["output"] == (
        "  File \"<tool>\", line 3\n    x = (\n        ^\nSyntaxError: '(' was never closed\n"
    )
    # Reported as a whole run, but what already ran cannot be undone (documented).
    assert (tmp_path / "ran.txt").exists()


def test_exit_status(tmp_path: Path) -> None:
    assert run_partial("import sys\nsys.exit(0)\n", tmp_path)["status"] == "ok"
    assert run_partial("raise SystemExit(None)\n", tmp_path)["status"] == "ok"
    code = run_partial("import sys\nsys.exit(3)\n", tmp_path)
    assert (code["status"], code["error"], code["output"]) == ("error", "SystemExit: 3", "")


@pytest.mark.parametrize(
    "ender", ["1/0", "import sys; sys.exit(0)", "raise KeyboardInterrupt", "undefined"]
)
def test_later_statements_do_not_run(ender: str, tmp_path: Path) -> None:
    program = f'print("before")\n{ender}\nprint("after")\nopen("later.txt", "w").close()\n'
    result = run_partial(program, tmp_path)
    assert "before" in result["output"]
    assert "after" not in result["output"]
    assert not (tmp_path / "later.txt").exists()


def test_each_statement_runs_when_fed(tmp_path: Path) -> None:
    program = 'open("one", "w").close()\nopen("two", "w").close()\n'
    listings = run_partial(program, tmp_path)["listings"]
    assert [[n for n in names if n in ("one", "two")] for names in listings] == [
        ["one"],
        ["one", "two"],
    ]


@pytest.mark.timing
def test_statements_run_while_later_chunks_are_still_coming() -> None:
    run_tool = _run_tool()
    chunks = ["import time\n", "time.sleep(0.2)\n", "print('done')\n"]
    result = run_tool("python", chunks, partial=True, chunk_interval=1.0, timeout=30)
    assert (result.status, result.output) == ("ok", "done\n")
    sleep, last = result.units[1], result.units[2]
    assert sleep["finished_at"] - sleep["started_at"] >= 0.2  # it ran inside its feed
    assert sleep["finished_at"] < last["decoded_at"]  # before the next chunk came


def test_sequential_mode_gives_the_same_result() -> None:
    run_tool = _run_tool()
    program = _src(CORPUS["error_in_function_called_later"])
    partial = run_tool("python", _chunks(program), partial=True, timeout=30)
    sequential = run_tool("python", _chunks(program), partial=False, timeout=30)
    assert (sequential.status, sequential.error, sequential.output) == (
        partial.status,
        partial.error,
        partial.output,
    )


def test_recursion_error_matches_whole_run(tmp_path: Path) -> None:
    # Only status and error: the "[Previous line repeated N more times]" count depends on how
    # deep in the worker's stack the program runs.
    program = "def f(n):\n    return f(n + 1)\n\nf(0)\n"
    partial, whole = run_partial(program, tmp_path), run_whole(program, tmp_path)
    assert (partial["status"], partial["error"]) == (whole["status"], whole["error"])
    assert partial["error"] == "RecursionError: maximum recursion depth exceeded"


def test_output_is_truncated(tmp_path: Path) -> None:
    program = "for i in range(1000):\n    print(i)\n1/0\n"
    config = {"max_output_bytes": 200}
    partial, whole = run_partial(program, tmp_path, config), run_whole(program, tmp_path, config)
    assert partial == {**whole, "listings": partial["listings"]}
    head, marker, tail = partial["output"].partition("[output truncated]\n")
    assert marker
    assert head == "".join(f"{i}\n" for i in range(1000))[:200]
    assert tail.startswith("Traceback") and tail.endswith("ZeroDivisionError: division by zero\n")


def test_long_traceback_keeps_its_end(tmp_path: Path) -> None:
    program = 'raise ValueError("why: " + "é" * 200)\n'
    config = {"max_output_bytes": 100}
    partial, whole = run_partial(program, tmp_path, config), run_whole(program, tmp_path, config)
    assert partial == {**whole, "listings": partial["listings"]}
    assert partial["output"].startswith("[traceback truncated]\n")
    assert partial["output"].endswith("é" * 40 + "\n")
    assert len(partial["output"].encode()) <= 100 + len("[traceback truncated]\n")
    assert partial["error"] == "ValueError: why: " + "é" * 41 + " [truncated]"  # 100 bytes


def test_truncation_does_not_split_a_character(tmp_path: Path) -> None:
    program = 'print("é" * 100)\n'  # 2 bytes each: an odd limit falls inside one
    output = run_partial(program, tmp_path, {"max_output_bytes": 11})["output"]
    assert output == "é" * 5 + "\n[output truncated]\n"


def test_huge_output_keeps_memory_bounded(tmp_path: Path) -> None:
    program = 'for _ in range(200_000):\n    print("x" * 1000)\n'
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the forking parent across
    # exec, so a worker forked from a large test process would report that process's peak.
    program += "hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0]\n"
    program += "print(hwm.split()[1], file=open('rss', 'w'))\n"
    result = run_partial(program, tmp_path)  # 200 MB printed, 1 MiB kept
    assert result["status"] == "ok"
    assert len(result["output"].encode()) < (1 << 20) + 100
    assert result["output"].endswith("[output truncated]\n")
    assert int((tmp_path / "rss").read_text()) < 150_000  # KiB: far below what was printed


def test_cancel_ignores_later_statements(tmp_path: Path) -> None:
    program = 'print("a")\nprint("b")\nopen("late", "w").close()\n'
    result = run_partial(program, tmp_path, cancel_after=1)
    assert (result["status"], result["error"], result["output"]) == ("aborted", "cancelled", "a\n")
    assert not (tmp_path / "late").exists()


@pytest.mark.parametrize("limit", [0, -1, "1MB", 1.5, True])
def test_bad_max_output_bytes_is_refused(limit: object) -> None:
    # start() only reads the config: nothing of a program runs in this process.
    with pytest.raises(ValueError, match="max_output_bytes"):
        PythonTool().start({"max_output_bytes": limit})


@pytest.mark.parametrize(
    "program",
    [
        "counter_value = 1\nprint(counter_valu)\n",
        "class A:\n    pass\na = A()\na.total = 1\nprint(a.totl)\n",
        "import math\nmath.sqr(4)\n",
    ],
)
def test_name_and_attribute_errors_carry_pythons_did_you_mean_hint(program):
    # An agent fixes its code from the traceback: it must end as CPython's own does.
    import subprocess
    import sys

    from conveyor_sgl.runtime.run_tool import run_tool

    cpython = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=30
    )
    result = run_tool("python", program)
    assert result.status == "error"
    expected = cpython.stderr.rstrip("\n").splitlines()[-1]
    assert "Did you mean" in expected
    assert result.output.rstrip("\n").splitlines()[-1] == expected
