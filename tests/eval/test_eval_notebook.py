"""The evaluation notebook, executed top to bottom under nbclient, and the reference plots.

The notebook starts the embedded server with the tiny model and runs one item per group in
every mode (``CONVEYOR_NOTEBOOK_QUICK``); the full results it draws are made here: a
synthetic benchmark file (``bench_results``) and a reference result set from real tool runs
(``run_tool`` drives the python tool through the parser, a session and a worker process,
with pauses between chunks standing for decoding).
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import nbformat
import pytest
from bench_results import GROUPS, make_results
from nbclient import NotebookClient

from conveyor_sgl import run_tool
from eval.modes import RunRecord
from eval.plots import make_plots
from eval.results import summarize_workload
from eval.run import write_results

NOTEBOOK = Path(__file__).resolve().parents[2] / "eval" / "notebooks" / "conveyor_eval.ipynb"
PROGRAM = [
    "import time\n",
    "time.sleep(0.3)\n",
    "x = sum(range(1000))\n",
    "time.sleep(0.3)\n",
    "print(x)\n",
]
ANSWER_S = 0.05  # stands for the final decode after the result
GROUPS_RUN = ("code-light", "search", "validation")  # the notebook's GROUPS
MODES = ("sequential", "client", "server")


def tool_run(partial: bool) -> RunRecord:
    result = run_tool("python", PROGRAM, partial=partial, chunk_interval=0.15, timeout=30)
    assert result.status == "ok", result.error
    tool = result.to_dict()
    mode = "client" if partial else "sequential"
    return RunRecord("code", mode, tool["result_ready_at"] + ANSWER_S, tool, 0.0001, 0.05)


@pytest.fixture(scope="module")
def results_file(tmp_path_factory) -> Path:
    records = [tool_run(partial) for partial in (False, True, False, True)]
    cells = summarize_workload(records, skipped={"server": "not measured in this test"})
    results = {
        "ms_per_token": 3.0,
        "model": {"parameters": 1_300_000},
        "workloads": {"code": cells},
        "workload_info": {"code": {"tool": "python", "source": "this test"}},
        "parser_cpu": {"share": 0.002},
        "errors": [],
    }
    return write_results(results, tmp_path_factory.mktemp("results"))[1]


def test_partial_runs_beat_sequential_and_respect_the_bound(results_file):
    import json

    cells = json.loads(results_file.read_text())["workloads"]["code"]
    seq, client = cells["sequential"], cells["client"]
    # The sleeps overlap the pauses between chunks only when the tool runs partially.
    assert client["latency_s"] < seq["latency_s"]
    assert seq["bound_s"] < seq["latency_s"]
    assert client["efficiency"] is not None and client["efficiency"] > 0
    assert cells["server"]["skipped"] == "not measured in this test"


def test_plots_are_written(results_file, tmp_path):
    import json

    paths = make_plots(json.loads(results_file.read_text()), tmp_path)
    names = sorted(p.name for p in paths)
    assert names == [
        "efficiency.png",
        "latency_reduction.png",
        "timeline_code.png",
        "wait_efficiency.png",
    ]
    assert all(p.read_bytes().startswith(b"\x89PNG") for p in paths)


@pytest.mark.server
@pytest.mark.timeout(900)
def test_notebook_runs_items_and_draws_the_results(results_file, tmp_path, monkeypatch):
    bench_file = tmp_path / "fast-latest.json"
    bench_file.write_text(json.dumps(make_results()))
    monkeypatch.setenv("CONVEYOR_NOTEBOOK_QUICK", "1")
    monkeypatch.setenv("CONVEYOR_NOTEBOOK_MODEL", "fast")
    monkeypatch.setenv("CONVEYOR_BENCH_RESULTS", str(bench_file))
    monkeypatch.setenv("CONVEYOR_BENCH_PLOTS", str(tmp_path / "plots"))
    monkeypatch.setenv("CONVEYOR_EVAL_RESULTS", str(results_file))
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    client = NotebookClient(
        notebook, timeout=600, kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOK.parent)}},
    )  # fmt: skip
    client.execute(env={**os.environ})
    outputs = [out for cell in notebook.cells if cell.cell_type == "code" for out in cell.outputs]
    text = "".join(out.get("text", "") for out in outputs)
    assert "/health 200" in text and "server stopped" in text
    ran = {(f[0].split(":")[0], f[1]) for f in map(str.split, text.splitlines()) if run_row(f)}
    assert ran == {(group, mode) for group in GROUPS_RUN for mode in MODES}
    for group in GROUPS:  # the benchmark table, per group and mode
        assert f"{group:<11} server" in text
    assert "not measured in this test" in text  # the reference run's skipped cell
    images = [out["data"]["image/png"] for out in outputs if "image/png" in out.get("data", {})]
    # 3 run timelines; 2 CDFs, a box plot, 2 timelines, load, agents, early abort; 2 bars and
    # 1 timeline of the reference run
    assert len(images) >= 14
    assert all(base64.b64decode(image).startswith(b"\x89PNG") for image in images)
    written = sorted(p.name for p in (tmp_path / "plots").iterdir())
    assert "fast-reduction_cdf.pdf" in written and "fast-load.png" in written


def run_row(fields: list[str]) -> bool:
    """A row of the notebook's runs: ``group:item mode latency decode wait reduction status``."""
    return len(fields) == 7 and fields[0].split(":")[0] in GROUPS_RUN and fields[1] in MODES
