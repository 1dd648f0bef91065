"""README.md's Python blocks run as written, against the embedded server, or say why not.

A ```python block right below a line ``<!-- not run: REASON -->`` is not run here (REASON,
next to the block in the README, says why); every other one runs as a file of its own, in a
fresh interpreter with a deadline, against the one server the test session shares
(conftest's ``flagged_server``: server mode on, so programs run in either mode, and the
qwen25 tool-call parser the README starts its server with for the OpenAI API). A block names
the server the README tells a reader to start (``README_URL``); the test puts the shared
server's URL there and changes nothing else. Every block, run here or not, must compile and
use no name it does not define or import (ruff's F821), so a stale example fails here rather
than for a reader.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
README_URL = "http://127.0.0.1:30000"  # where the README starts the embedded server
BLOCK_DEADLINE_S = 300
RUFF = Path(sys.executable).with_name("ruff")
RUFF_UNDEFINED_NAMES = ("check", "--isolated", "--no-cache", "--quiet", "--select", "F821")
FENCE = re.compile(r"^ {0,3}(`{3,})\s*(\S*)")
NOT_RUN = re.compile(r"^<!-- not run: (?P<reason>.*\S)\s*-->\s*$")


@dataclass(frozen=True)
class Block:
    line: int  # of the opening fence, 1-based
    code: str
    not_run: str | None  # the reason, for a block the README marks as not run here

    @property
    def name(self) -> str:
        return f"README.md:{self.line}"


def python_blocks(text: str) -> list[Block]:
    """The ```python blocks of a Markdown text, with the marker line right above each."""
    blocks: list[Block] = []
    lines = text.splitlines()
    fence: str | None = None  # the open fence's backticks
    start, info, body = 0, "", []
    for number, line in enumerate(lines, start=1):
        match = FENCE.match(line)
        if fence is None:
            if match:
                fence, info, start, body = match.group(1), match.group(2), number, []
            continue
        if match and match.group(1).startswith(fence) and not match.group(2):
            if info == "python":
                above = NOT_RUN.match(lines[start - 2]) if start >= 2 else None
                reason = above.group("reason") if above else None
                blocks.append(Block(start, "\n".join(body) + "\n", reason))
            fence = None
        else:
            body.append(line)
    assert fence is None, f"README.md:{start}: a code block is never closed"
    return blocks


BLOCKS = python_blocks(README.read_text(encoding="utf-8"))
RUNNABLE = [block for block in BLOCKS if block.not_run is None]


def test_the_readme_runs_its_first_example_and_marks_only_python_blocks():
    text = README.read_text(encoding="utf-8")
    assert RUNNABLE and RUNNABLE[0] == BLOCKS[0], "the first Python block must be runnable"
    assert README_URL in RUNNABLE[0].code
    # A marker that is not right above a Python block is a stale one.
    markers = [line for line in text.splitlines() if line.startswith("<!-- not run")]
    assert len(markers) == sum(block.not_run is not None for block in BLOCKS), markers
    for block in BLOCKS:
        assert block.not_run is None or len(block.not_run.split()) >= 3, block.name


def test_the_block_parser():
    text = (
        "x\n```\nnot python\n```\n<!-- not run: needs a GPU here -->\n```python\na = 1\n"
        '    s = "```python"\n```\n````python\nb = 2\n```\nstill b\n````\n'
    )
    assert python_blocks(text) == [
        Block(6, 'a = 1\n    s = "```python"\n', "needs a GPU here"),
        Block(10, "b = 2\n```\nstill b\n", None),
    ]


@pytest.mark.parametrize("block", BLOCKS, ids=lambda block: block.name)
def test_every_block_compiles_and_defines_what_it_uses(block):
    compile(block.code, block.name, "exec")
    done = subprocess.run(
        [str(RUFF), *RUFF_UNDEFINED_NAMES, "--stdin-filename", "readme_block.py", "-"],
        input=block.code,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, f"{block.name}: {done.stdout}{done.stderr}"


@pytest.mark.server
@pytest.mark.parametrize("block", RUNNABLE, ids=lambda block: block.name)
def test_every_runnable_block_runs_against_the_embedded_server(block, flagged_server, tmp_path):
    script = tmp_path / "block.py"
    script.write_text(block.code.replace(README_URL, flagged_server.url), encoding="utf-8")
    # Its own session: on the deadline, the block and every process it started end together.
    proc = subprocess.Popen(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = proc.communicate(timeout=BLOCK_DEADLINE_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        stdout, stderr = proc.communicate()
        pytest.fail(f"{block.name} ran past {BLOCK_DEADLINE_S} s:\n{stdout}\n{stderr}")
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # what it left behind
    done = subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)
    assert done.returncode == 0, f"{block.name} failed:\n{done.stdout}\n{done.stderr}"
    print(f"{block.name}:\n{done.stdout}")
