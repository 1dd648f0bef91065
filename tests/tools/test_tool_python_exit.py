"""The Python tool's end of program is CPython's: finalizers (``__del__``, a suspended
generator's ``finally``) run after the last statement, after the traceback, and what they
print, "Exception ignored in: ..." included, is what ``python -u program.py 2>&1`` prints.

The programs run in a tool worker (``run_tool``), the reference in a real interpreter.
"""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from conveyor_sgl.runtime.run_tool import run_tool
from conveyor_sgl.tools.python_exec import Sink
from conveyor_sgl.tools.python_report import TRUNCATION_MARKER, assemble

PROGRAMS = {
    "del_and_suspended_generator": """
        class Resource:
            def __init__(self, name):
                self.name = name
            def __del__(self):
                print("released", self.name)

        def numbers():
            try:
                yield 1
                yield 2
            finally:
                print("generator closed")

        r = Resource("r")
        g = numbers()
        print("first", next(g))
        pair = [Resource("p1"), Resource("p2")]
        print("end of program")
    """,
    "locals_of_the_failing_frame_after_the_traceback": """
        class Resource:
            def __init__(self, name):
                self.name = name
            def __del__(self):
                print("released", self.name)

        kept = Resource("global")
        def work():
            local = Resource("local")
            return 1 / 0
        work()
    """,
    "finalizers_that_raise": """
        class Broken:
            def __del__(self):
                raise ValueError("cannot close")

        def stream():
            try:
                yield 1
            finally:
                [][0]

        def scope():
            b = Broken()
            del b  # ignored mid-program: shown with its source line
        scope()
        kept = Broken()
        s = stream()
        next(s)
        print("done")
    """,
    "sys_exit_then_finalizers": """
        import sys
        class Resource:
            def __del__(self):
                print("released at exit", file=sys.stderr)
        r = Resource()
        sys.exit("bye")
    """,
    "stdout_restored_for_finalizers": """
        import io, sys
        class Resource:
            def __del__(self):
                print("released", sys.stdout is sys.__stdout__, sys.argv)
        r = Resource()
        sys.stdout = io.StringIO()
        print("hidden")
    """,
    "after_importing_multiprocessing": """
        import multiprocessing  # keeps the program's module as sys.modules["__mp_main__"]
        class Resource:
            def __del__(self):
                print("released")
        r = Resource()
    """,
    "cycles_and_many_objects": """
        class Node:
            def __init__(self, n):
                self.n, self.me = n, self
            def __del__(self):
                print("node", self.n)
        nodes = [Node(i) if i % 400 == 0 else {"i": i} for i in range(2000)]
        table = {i: Node(f"t{i}") for i in range(3)}
        print(len(nodes))
    """,
}


# The collector's order among objects in reference cycles follows when it last ran, which
# even Python's own start-up shifts: ``python -S`` prints these in another order.
UNORDERED = {"cycles_and_many_objects"}


def _terminal(program: str, tmp_path: Path) -> str:
    path = tmp_path / "prog.py"
    path.write_text(program)
    proc = subprocess.run(
        [sys.executable, "-u", str(path)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        cwd=tmp_path,
        check=False,
        timeout=60,
    )
    return proc.stdout.decode().replace(str(path), "<tool>")


def _program(name: str) -> str:
    return textwrap.dedent(PROGRAMS[name]).lstrip("\n")


def _addresses(text: str) -> str:
    return re.sub(r" at 0x[0-9a-f]+>", " at 0x...>", text)


@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_end_of_program_prints_what_python_prints(name: str, tmp_path: Path) -> None:
    program = _program(name)
    chunks = [program[i : i + 9] for i in range(0, len(program), 9)]
    output = _addresses(run_tool("python", chunks, timeout=30).output)
    terminal = _addresses(_terminal(program, tmp_path))
    if name in UNORDERED:
        output, terminal = sorted(output.splitlines()), sorted(terminal.splitlines())
    assert output == terminal


def test_finalizers_run_in_order_after_the_traceback() -> None:
    result = run_tool("python", _program("locals_of_the_failing_frame_after_the_traceback"))
    assert result.status == "error"
    assert result.output.endswith(
        "ZeroDivisionError: division by zero\nreleased local\nreleased global\n"
    )


def test_a_finalizer_that_raises_is_shown_as_python_shows_it() -> None:
    result = run_tool("python", _program("finalizers_that_raise"))
    assert result.status == "ok"
    lines = _addresses(result.output).splitlines()
    assert lines[:5] == [
        "Exception ignored in: <function Broken.__del__ at 0x...>",
        "Traceback (most recent call last):",
        '  File "<tool>", line 3, in __del__',
        '    raise ValueError("cannot close")',
        "ValueError: cannot close",
    ]
    # At exit, once the modules are gone, Python shows no source lines.
    assert "Exception ignored in: <generator object stream at 0x...>" in lines
    end = ['  File "<tool>", line 9, in stream', "IndexError: list index out of range"]
    assert lines[-2:] == end


def _sink(before: bytes, after: bytes, limit: int) -> Sink:
    sink = Sink(limit)
    sink.write(before)
    sink.end = sink.total
    sink.write(after)
    return sink


def test_finalizer_output_follows_the_traceback_within_the_limit() -> None:
    tail = "E: k\n"
    assert assemble("", _sink(b"out\n", b"del\n", 100), tail, 100) == "out\n" + tail + "del\n"
    cut = assemble("", _sink(b"out\n", b"x" * 10, 8), tail, 8)
    assert cut == "out\n" + tail + "xxxx\n" + TRUNCATION_MARKER + "\n"
    # Output already cut before the end: its marker stands for what finalizers printed too.
    full = assemble("", _sink(b"y" * 10, b"del\n", 8), tail, 8)
    assert full == "y" * 8 + "\n" + TRUNCATION_MARKER + "\n" + tail
