"""The benchmark runner end to end on a real server, with the short preset: every mode of
every item runs, each row is paired with its item's own sequential run, the agents, the
load levels and early abort come out with their distributions.

The agent is a research one (three short calls), the quickest kind: the runner plays every
kind alike, and test_datasets runs every kind's rounds in their tools."""

from __future__ import annotations

import pytest
import sglang as sgl

from eval import benchmark
from eval.bench_table import format_table
from eval.benchmark import PRESETS, parse_args, run_benchmark
from eval.datasets.agents import AgentItem, load_agents
from eval.datasets.sampling import sample

GROUPS = ("validation", "calculator")


@pytest.fixture(scope="module")
def results(flagged_server):
    backend = sgl.RuntimeEndpoint(flagged_server.url)
    args = parse_args(["--preset", "test", "--groups", ",".join(GROUPS)])
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(benchmark, "load_agents", research_agents)
        return run_benchmark(args, PRESETS["test"], backend, None)


def research_agents(limit: int, seed: int) -> list[AgentItem]:
    return sample([a for a in load_agents() if a.item.startswith("research/")], limit, seed)


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
    assert [p["item"] for p in agents["programs"]] == [research_agents(1, 0)[0].item] * 3
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
        # Decoding stopped at the failing statement, before the program's end: the tool got
        # fewer statements (the times say the same, but one sample's time is noise here).
        rows = [r for r in results["early_abort"]["rows"] if r["mode"] == mode]
        units = {r["on"]: r["units"] for r in rows}
        assert units[True] < units[False], rows
    table = format_table({**results, "ms_per_token": 1.0, "model_name": "fast"})
    assert "validation" in table and "calculator" in table


@pytest.mark.server
def test_the_results_say_where_the_time_went(results):
    spent = results["time_s"]
    assert set(spent["groups"]) == set(GROUPS)
    runs = sum(r["latency_s"] for r in results["items"])
    assert spent["runs"] == pytest.approx(runs, abs=0.1)
    # The timed runs, the warm-ups and the uncounted first sessions all happen inside the
    # groups' walls.
    inside = spent["runs"] + spent["warm_up"] + spent["first_sessions"]
    assert 0 < inside <= sum(spent["groups"].values()) + 0.5
    assert all(spent[part] > 0 for part in ("agents", "load", "abort"))
