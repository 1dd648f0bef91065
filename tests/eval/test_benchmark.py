"""The benchmark runner end to end on a real server, with the short preset: every mode of
every item runs, each row is paired with its item's own sequential run, the agents, the
load levels and early abort come out with their distributions."""

from __future__ import annotations

import pytest
import sglang as sgl

from eval.bench_table import format_table
from eval.benchmark import PRESETS, parse_args, run_benchmark

GROUPS = ("validation", "calculator")


@pytest.fixture(scope="module")
def results(flagged_server):
    backend = sgl.RuntimeEndpoint(flagged_server.url)
    args = parse_args(["--preset", "test", "--groups", ",".join(GROUPS)])
    return run_benchmark(args, PRESETS["test"], backend, None)


@pytest.mark.server
def test_every_item_runs_in_every_mode_with_its_expected_status(results):
    assert results["errors"] == [] and results["skipped"] == {}
    rows = results["items"]
    assert len(rows) == len(GROUPS) * 2 * 3
    assert all(r["status"] == r["expect"] for r in rows), rows
    for group in GROUPS:
        g = results["groups"][group]
        assert (g["n_items"], g["sampled"]) == (2, True) and g["source"]["license"]
        assert set(g["modes"]) == {"sequential", "client", "server"}
        for mode in ("client", "server"):
            cell = g["modes"][mode]
            mine = sorted(r["reduction"] for r in rows if (r["group"], r["mode"]) == (group, mode))
            assert cell["reduction"]["n"] == 2
            assert cell["reduction"]["median"] == pytest.approx(sum(mine) / 2)
            assert g["timeline"][mode]["tool"]["mode"] == mode


@pytest.mark.server
def test_agents_load_and_early_abort(results):
    agents = results["agents"]
    assert agents["errors"] == [] and {p["mode"] for p in agents["programs"]} == {
        "sequential",
        "client",
        "server",
    }
    for program in agents["programs"]:
        assert 3 <= len(program["rounds"]) <= 5
        assert [r["status"] for r in program["rounds"]] == [r["expect"] for r in program["rounds"]]
    levels = results["load"]["levels"]
    assert set(levels) == {"1", "2"} and levels["2"]["server"]["n"] == 4
    for mode in ("client", "server"):
        abort = results["early_abort"]["modes"][mode]
        assert abort["statuses_on"] == ["error"]
        # Decoding stopped at the failing statement, before the program's end.
        assert abort["on"]["decode_s"]["median"] < abort["off"]["decode_s"]["median"]
    table = format_table({**results, "ms_per_token": 1.0, "model_name": "fast"})
    assert "validation" in table and "calculator" in table
