"""``abort_on_error``: the Python tool asks to stop decoding at the first statement that fails.

The tool is driven in a subprocess (model-written code never runs in the pytest process) or
in a tool worker (``run_tool``); the reference is a real interpreter's run of the whole text.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from conveyor_sgl.runtime.run_tool import run_tool
from conveyor_sgl.tools.python import PythonTool

REPO = Path(__file__).resolve().parents[2]

# start -> feed each unit the real parser cuts, stopping at an Abort as the runtime does ->
# finish; prints the verdicts and the result as JSON (the program's output is captured).
DRIVER = r"""
import json, sys
from conveyor_sgl.parsers import make_parser, parse_chunks
from conveyor_sgl.tools.base import Abort
from conveyor_sgl.tools.python import PythonTool

req = json.load(sys.stdin)
tool = PythonTool()
tool.start(req["config"])
verdicts = []
for unit in parse_chunks(make_parser("python"), [req["program"]]):
    verdict = tool.feed(unit)
    verdicts.append(verdict.reason if isinstance(verdict, Abort) else None)
    if isinstance(verdict, Abort):
        break
out = tool.finish()
print(json.dumps({"verdicts": verdicts, "status": out.status, "error": out.error,
                  "output": out.output}))
"""

PROGRAM = 'print("a")\nx = 1 / 0\nprint("b")\nopen("later.txt", "w").close()\n'
TRACEBACK = (
    "Traceback (most recent call last):\n"
    '  File "<tool>", line 2, in <module>\n'
    "    x = 1 / 0\n"
    "        ~~^~~\n"
    "ZeroDivisionError: division by zero\n"
)


def _drive(program: str, config: dict[str, Any], cwd: Path) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-c", DRIVER],
        input=json.dumps({"program": program, "config": config}),
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        check=False,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_the_first_failing_statement_asks_to_stop(tmp_path: Path) -> None:
    result = _drive(PROGRAM, {"abort_on_error": True}, tmp_path)
    assert result["verdicts"] == [None, "ZeroDivisionError: division by zero"]
    assert (result["status"], result["error"]) == ("error", "ZeroDivisionError: division by zero")
    assert result["output"] == "a\n" + TRACEBACK  # what the whole program prints


def test_off_by_default_every_statement_arrives(tmp_path: Path) -> None:
    result = _drive(PROGRAM, {}, tmp_path)
    assert result["verdicts"] == [None] * 4
    assert (result["status"], result["output"]) == ("error", "a\n" + TRACEBACK)
    assert not (tmp_path / "later.txt").exists()  # later statements never run either way


@pytest.mark.parametrize(
    ("ender", "reason"),
    [
        ("import sys; sys.exit(3)", "SystemExit: 3"),
        ("raise KeyboardInterrupt", "KeyboardInterrupt"),
        ("return 1", "SyntaxError: 'return' outside function (<tool>, line 2)"),
        ("import sys; sys.exit(0)", None),  # the program is over, but it did not fail
    ],
)
def test_what_counts_as_failing(ender: str, reason: str | None, tmp_path: Path) -> None:
    result = _drive(f'print("a")\n{ender}\nprint("b")\n', {"abort_on_error": True}, tmp_path)
    assert result["verdicts"] == ([None, reason] if reason else [None, None, None])


@pytest.mark.parametrize("value", [1, "yes", None])
def test_abort_on_error_must_be_a_bool(value: object) -> None:
    with pytest.raises(TypeError, match="abort_on_error must be true or false"):
        PythonTool.check_config({"abort_on_error": value})


def test_a_worker_stops_taking_statements_and_reports_the_error() -> None:
    chunks = PROGRAM.splitlines(keepends=True) + [f"y{i} = {i}\n" for i in range(6)]
    config = {"abort_on_error": True}
    result = run_tool("python", chunks, config=config, chunk_interval=0.1, timeout=30)
    assert (result.status, result.error) == ("error", "ZeroDivisionError: division by zero")
    assert result.output == "a\n" + TRACEBACK
    # The verdict comes back while the next statement is decoded: feeding stops there.
    assert len(result.units) < len(chunks) - 3, result.units


def test_only_abort_on_error_makes_later_calls_wait_for_a_python_call():
    from conveyor_sgl.tools.python import PythonTool
    from conveyor_sgl.tools.sql import SqlTool
    from conveyor_sgl.tools.validation import ValidationTool

    assert PythonTool.may_abort({}) is False  # a failed statement is its output, not an abort
    assert PythonTool.may_abort({"abort_on_error": True}) is True
    assert ValidationTool.may_abort({}) is True  # overrides feed: the base class's rule
    assert SqlTool.may_abort({}) is False  # its errors are results: decoding goes on
