"""The evaluation notebook, executed top to bottom under nbclient, and what it leaves behind.

The notebook runs on the session's shared server (``CONVEYOR_NOTEBOOK_URL``; the same tiny
model it would start itself) one item per group in every mode (``CONVEYOR_NOTEBOOK_QUICK``);
the full results it draws are a synthetic benchmark file (``bench_results``). It writes
only under its output directory (``.notebook-output/``, git-ignored, unless
``CONVEYOR_NOTEBOOK_OUTPUT`` says otherwise): running it changes nothing committed, neither
the notebook nor the figures of ``eval/results/``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import nbformat
import pytest
from bench_results import GROUPS, make_results
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "eval" / "notebooks" / "conveyor_eval.ipynb"
DEFAULT_OUTPUT = ".notebook-output"  # the notebook's default, relative to the repository
# What the notebook could overwrite if it wrote where it must not.
COMMITTED = (ROOT / "eval" / "notebooks", ROOT / "eval" / "results")
GROUPS_RUN = ("code-light", "search", "validation")  # the notebook's GROUPS
MODES = ("sequential", "client", "server")


def notebook_text(cell_type: str) -> str:
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    return "\n".join(cell.source for cell in notebook.cells if cell.cell_type == cell_type)


def snapshot() -> dict[str, str]:
    """Every file under COMMITTED, by path, with a hash of its content."""
    return {
        str(path.relative_to(ROOT)): hashlib.sha256(path.read_bytes()).hexdigest()
        for top in COMMITTED
        for path in sorted(top.rglob("*"))
        if path.is_file()
    }


def test_the_notebook_writes_outside_tracked_paths_by_default():
    code = notebook_text("code")
    assert 'os.environ.get("CONVEYOR_NOTEBOOK_OUTPUT", ROOT / ".notebook-output")' in code
    assert 'os.environ.get("CONVEYOR_BENCH_PLOTS", OUTPUT / "plots")' in code
    assert 'BENCH_DIR / "plots"' not in code  # the committed figures' directory
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    ignored = subprocess.run(
        ["git", "check-ignore", "-q", f"{DEFAULT_OUTPUT}/plots/fast-load.pdf"],
        cwd=ROOT,
        check=False,
    )
    assert ignored.returncode == 0, f"{DEFAULT_OUTPUT}/ must be git-ignored"


def test_its_advice_runs_a_copy_never_the_committed_notebook_in_place():
    advice = notebook_text("markdown")
    assert "--inplace eval/notebooks" not in advice
    assert f"cp eval/notebooks/conveyor_eval.ipynb {DEFAULT_OUTPUT}/" in advice
    assert f"jupyter execute --inplace {DEFAULT_OUTPUT}/conveyor_eval.ipynb" in advice


@pytest.mark.server
@pytest.mark.timeout(900)
def test_notebook_runs_items_and_draws_the_results(flagged_server, tmp_path, monkeypatch):
    bench_file = tmp_path / "fast-latest.json"
    bench_file.write_text(json.dumps(make_results()))
    output = tmp_path / "output"
    monkeypatch.setenv("CONVEYOR_NOTEBOOK_QUICK", "1")
    monkeypatch.setenv("CONVEYOR_NOTEBOOK_MODEL", "fast")
    monkeypatch.setenv("CONVEYOR_BENCH_RESULTS", str(bench_file))
    monkeypatch.setenv("CONVEYOR_NOTEBOOK_OUTPUT", str(output))
    monkeypatch.setenv("CONVEYOR_NOTEBOOK_URL", flagged_server.url)
    monkeypatch.delenv("CONVEYOR_BENCH_PLOTS", raising=False)  # the figures: under the output
    before = snapshot()
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    client = NotebookClient(
        notebook, timeout=600, kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOK.parent)}},
    )  # fmt: skip
    client.execute(env={**os.environ})
    outputs = [out for cell in notebook.cells if cell.cell_type == "code" for out in cell.outputs]
    text = "".join(out.get("text", "") for out in outputs)
    assert f"{flagged_server.url}: /health 200" in text and "server stopped" not in text
    ran = {(f[0].split(":")[0], f[1]) for f in map(str.split, text.splitlines()) if run_row(f)}
    assert ran == {(group, mode) for group in GROUPS_RUN for mode in MODES}
    for group in GROUPS:  # the benchmark table, per group and mode
        assert f"{group:<11} server" in text
    images = [out["data"]["image/png"] for out in outputs if "image/png" in out.get("data", {})]
    # 3 run timelines; 2 CDFs, a box plot, 2 timelines, load, agents, early abort
    assert len(images) >= 11
    assert all(base64.b64decode(image).startswith(b"\x89PNG") for image in images)
    written = sorted(p.name for p in (output / "plots").iterdir())
    assert "fast-reduction_cdf.pdf" in written and "fast-load.png" in written
    assert snapshot() == before, "running the notebook changed committed files"


def run_row(fields: list[str]) -> bool:
    """A row of the notebook's runs: ``group:item mode latency decode wait reduction status``."""
    return len(fields) == 7 and fields[0].split(":")[0] in GROUPS_RUN and fields[1] in MODES
