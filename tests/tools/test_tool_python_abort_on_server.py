"""``abort_on_error`` on the real SGLang server (CPU, embedded model), in client and server
mode: a HumanEval-style program whose first statement fails stops decoding there, with the
result the whole program gives (status ``error``, the traceback Python prints)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import sglang as sgl

from conveyor_sgl import partial_tool, tool_result
from programs.code_solver import forced

pytestmark = [pytest.mark.server, pytest.mark.timeout(180)]

# A solution with a seeded bug in its first line (``List`` misspelt), then its tests.
REFERENCE = '''from typing import list


def rolling_max(numbers: list[int]) -> list[int]:
    """The largest number seen so far, at each position of ``numbers``."""
    result = []
    best = None
    for n in numbers:
        best = n if best is None else max(best, n)
        result.append(best)
    return result


def check(candidate):
    assert candidate([]) == []
    assert candidate([1, 2, 3, 4]) == [1, 2, 3, 4]
    assert candidate([4, 3, 2, 1]) == [4, 4, 4, 4]
    assert candidate([3, 2, 3, 100, 3]) == [3, 3, 3, 100, 100]


check(rolling_max)
print("all tests passed")
'''


@sgl.function
def solution(s, mode, config):
    s += "```python\n" + partial_tool(
        "code",
        tool="python",
        mode=mode,
        config=config,
        stop="```",
        max_tokens=400,
        regex=forced(REFERENCE, "```"),
    )
    s += "```\nOutput:\n" + tool_result("code", timeout=60)


def _run(url: str, mode: str, abort: bool) -> tuple[Any, dict[str, Any]]:
    config = {"abort_on_error": abort}
    state = solution.run(mode=mode, config=config, backend=sgl.RuntimeEndpoint(url))
    assert state.error() is None, state.error()
    tool = state.get_meta_info("code")["tool"]
    assert tool["mode"] == mode
    return state, tool


def _terminal(tmp_path: Path) -> str:
    """What ``python -u program.py 2>&1`` prints for the whole reference."""
    path = tmp_path / "prog.py"
    path.write_text(REFERENCE)
    proc = subprocess.run(
        [sys.executable, "-u", str(path)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        check=False,
        timeout=60,
    )
    return proc.stdout.decode().replace(str(path), "<tool>")


@pytest.mark.timing
@pytest.mark.parametrize("mode", ["client", "server"])
def test_decoding_stops_at_the_first_exception(flagged_server, mode, tmp_path):
    full_state, full = _run(flagged_server.url, mode, abort=False)
    cut_state, cut = _run(flagged_server.url, mode, abort=True)
    terminal = _terminal(tmp_path)
    assert terminal.startswith("Traceback") and "ImportError: cannot import name 'list'" in terminal
    # The same result as the whole program, from a fraction of its tokens.
    assert full_state["code"] == REFERENCE and full["output"] == terminal
    assert (cut["status"], cut["output"], cut["error"]) == ("error", terminal, full["error"])
    assert cut["error"].startswith("ImportError: cannot import name 'list' from 'typing'")
    assert REFERENCE.startswith(cut_state["code"])
    assert len(cut_state["code"]) < len(REFERENCE) // 4, cut_state["code"]
    tokens = [s.get_meta_info("code")["completion_tokens"] for s in (full_state, cut_state)]
    assert tokens[1] < tokens[0] // 4, tokens
    assert cut["decode_finished_at"] < full["decode_finished_at"]
    assert cut_state.text().endswith("```\nOutput:\n" + terminal)
