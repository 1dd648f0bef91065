"""The evaluation notebook and the plots run on a small result set made here (no server).

The result set comes from real tool runs: ``run_tool`` drives the python tool through the
parser, a session and a worker process, with pauses between chunks standing for decoding.
"""

from __future__ import annotations

import base64
import os
from pathlib import Path

import nbformat
import pytest
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


def test_notebook_executes_and_shows_the_table_and_plots(results_file, monkeypatch):
    monkeypatch.setenv("CONVEYOR_EVAL_RESULTS", str(results_file))
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    client = NotebookClient(
        notebook, timeout=120, kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOK.parent)}},
    )  # fmt: skip
    client.execute(env={**os.environ})
    outputs = [out for cell in notebook.cells if cell.cell_type == "code" for out in cell.outputs]
    text = "".join(out.get("text", "") for out in outputs)
    assert "sequential" in text and "code" in text and "not measured in this test" in text
    images = [out["data"]["image/png"] for out in outputs if "image/png" in out.get("data", {})]
    assert len(images) >= 3  # reduction, efficiency, one timeline
    assert all(base64.b64decode(image).startswith(b"\x89PNG") for image in images)
