"""What ``make demo`` prints (``eval.demo``, ``eval.saving_table``), from a synthetic
benchmark results dict and synthetic program runs (no server, no model)."""

from __future__ import annotations

import statistics

import pytest
from bench_results import GROUPS, make_results, timeline

from eval.demo import cpus, program_row, timelines
from eval.modes import RunRecord
from eval.saving_table import benchmark_rows, format_saving_table, percent, saving

pytestmark = pytest.mark.timeout(60)
PROGRAM_S = {"sequential": 9.0, "client": 5.0, "server": 4.8}


def program_runs(rounds: int = 5) -> list[RunRecord]:
    return [
        RunRecord("code_solver", mode, latency + 0.1 * r, {**timeline(mode), "output": "17\n"}, r)
        for r in range(rounds)
        for mode, latency in PROGRAM_S.items()
    ]


def with_abort_rows(results: dict) -> dict:
    # Two buggy items, each off then on in both modes: on saves 1.2 s of 3.0 (+0.1 per item).
    results["early_abort"]["rows"] = [
        {"item": f"h/{k}", "mode": mode, "on": on, "latency_s": 3.0 + 0.1 * k - (1.2 if on else 0)}
        for k in range(2)
        for mode in ("client", "server")
        for on in (False, True)
    ]
    return results


def table(rounds: int = 5) -> str:
    rows = [program_row(program_runs(rounds)), *benchmark_rows(with_abort_rows(make_results()))]
    return format_saving_table(rows, "What partial execution saved: test")


def row_of(text: str, label: str) -> str:
    return next(line for line in text.splitlines() if line.split()[:1] == [label])


def test_one_line_per_program_and_workload_with_the_saving_in_seconds_and_percent():
    text = table()
    # The program: 9.2 s sequential (median of 9.0..9.4), client 5.2: 4.0 s, 43%
    assert "9.20 s" in row_of(text, "code_solver")
    assert "5.20 s, saved 4.00 s, 43%" in row_of(text, "code_solver")
    assert "5.00 s, saved 4.20 s, 46%" in row_of(text, "code_solver")
    results = make_results()
    for group in GROUPS:
        items = [it for it in results["items"] if it["group"] == group]
        seq = {it["name"]: it["latency_s"] for it in items if it["mode"] == "sequential"}
        client = [(seq[it["name"]], it["latency_s"]) for it in items if it["mode"] == "client"]
        seconds = statistics.median(b - p for b, p in client)
        share = seconds / statistics.median(b for b, _ in client)
        assert f"saved {seconds:.2f} s, {percent(share)}" in row_of(text, group)
    assert "saved 1.20 s, 39%" in row_of(text, "early")  # 1.2 of 3.05 (median)


def test_modes_are_labelled_and_every_term_has_a_legend():
    text = table()
    head = text.splitlines()[2:4]
    assert "sequential" in head[0] and "(baseline)" in head[1]
    assert "client mode" in head[0] and "server mode" in head[0]
    assert "mode=client" not in text
    legend = text.split("\n\n")[-1]  # under the table
    for term in ("sequential (baseline):", "client mode:", "server mode:", "latency:", "saved:"):
        assert term in legend
    for term in ("n:", "code_solver:", "agents:", "early abort:", "negative: slower"):
        assert term in legend
    assert max(len(line) for line in legend.splitlines()) <= 100


def test_figures_from_fewer_than_five_items_are_marked():
    text = table(rounds=2)
    assert "n=2 (too few to read)" in row_of(text, "code_solver")
    assert "n=5" in row_of(text, "search") and "too few" not in row_of(text, "search")
    assert "n=3 (too few to read)" in row_of(text, "agents")
    assert "n=2 (too few to read)" in row_of(text, "early")
    assert "(too few to read)" not in row_of(table(), "code_solver")


def test_a_mode_that_did_not_run_is_a_dash_and_negative_savings_are_signed():
    runs = [r for r in program_runs() if r.mode != "server"]
    runs = [RunRecord(r.workload, r.mode, 10.0 - r.latency_s / 2, r.tool, r.round) for r in runs]
    row = row_of(format_saving_table([program_row(runs)], "t"), "code_solver")
    assert row.rstrip().endswith("-") and "saved -2.00 s, -" in row


def test_seconds_and_percent_never_disagree_in_sign():
    # Per item: 0.1 s slower of 1 s (-10%), 0.5 s faster of 10 s (+5%): the medians of the
    # two would be +0.2 s and -2.5%; the percent is of the baselines' median instead.
    assert saving([(1.0, 1.1), (10.0, 9.5)]) == "5.30 s, saved 0.20 s, 3.6%"


def test_the_timelines_show_the_baseline_and_partial_execution_labelled():
    text = timelines(program_runs())
    assert "=== sequential (baseline): the tool gets the code once decoding ends" in text
    assert "=== server mode: partial execution, the tool inside the server" in text
    assert "the run nearest the median of 5" in text and "mode=" not in text
    assert text.count("decoding ended at") == 2 and "waited" in text
    assert "times in seconds from when the tool call's request was sent" in text


def test_the_title_says_where_decoding_and_the_tools_ran():
    assert (
        cpus({"server": "0", "tools": "1"}) == "server on CPU 0, this client and the tools on CPU 1"
    )
    assert cpus({"server": None, "tools": None}) == "server and tools share the CPUs"
