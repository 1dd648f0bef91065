"""The latency bound and efficiency (``eval.latency_bound``), and the per-item cells built
from them (``eval.results``): from hand-made timelines, and from real tool runs."""

from __future__ import annotations

import statistics

import pytest

from conveyor_sgl import run_tool
from eval import latency_bound
from eval.modes import MODES, RunRecord
from eval.results import summarize_workload


def unit(decoded, started, finished, text="x", after=None):
    return {"text": text, "decoded_at": decoded, "sent_at": started, "started_at": started,
            "finished_at": finished, "after": after}  # fmt: skip


def timeline(units, decode_end, ready, status="ok"):
    return {"status": status, "output": "out", "error": None, "mode": "client",
            "units": units, "decode_finished_at": decode_end, "result_ready_at": ready}  # fmt: skip


def test_schedule_follows_the_paper_recurrence():
    # f1 = max(0, 1) + 2 = 3; f2 = max(3, 2) + 1 = 4; f3 = max(4, 6) + 0.5 = 6.5
    units = [unit(1, 0, 2), unit(2, 0, 1), unit(6, 0, 0.5)]
    assert latency_bound.schedule_finish(units) == pytest.approx(6.5)


def test_bound_of_a_sequential_run_overlaps_tool_with_decoding():
    # Decoding ends at 6; units ran one after the other after it (t = 2, 1, 0.5).
    units = [unit(1, 6.0, 8.0), unit(2, 8.0, 9.0), unit(6, 9.0, 9.5)]
    tool = timeline(units, decode_end=6.0, ready=9.5)
    # 0.5 s before the request and after the result, as measured
    bound = latency_bound.bound_from_run(latency_s=10.0, tool=tool)
    assert bound == pytest.approx(0.5 + 6.5)
    assert bound < 10.0


def test_independent_units_overlap_each_other_in_the_bound():
    # Search queries (after=[]): each may start once decoded, whatever the others do.
    # Sequential run: all three ran at once after decoding ended at 5, 2 s each.
    units = [unit(d, 5.0, 7.0, after=[]) for d in (1, 2, 4)]
    tool = timeline(units, decode_end=5.0, ready=7.0)
    # done at max(1, 2, 4) + 2 = 6 -> max(6, decode end 5) = 6
    assert latency_bound.bound_from_run(latency_s=7.0, tool=tool) == pytest.approx(6.0)


def test_plan_tasks_wait_for_their_dependencies_only():
    # 0: search (2 s), 1: search (2 s), 2: join($1, $2) (0.5 s), 3: python (1 s, no deps).
    units = [
        unit(1, 10, 12, after=[]),
        unit(2, 10, 12, after=[]),
        unit(3, 12, 12.5, after=[0, 1]),
        unit(3.5, 10, 11, after=[]),
    ]
    # f = 3, 4, max(3, 3, 4) + 0.5 = 4.5, 4.5 -> done 4.5, decoding ends at 9
    assert latency_bound.schedule_finish(units) == pytest.approx(4.5)
    units[3]["after"] = None  # a serial unit waits for the one before it: 4.5 + 1
    assert latency_bound.schedule_finish(units) == pytest.approx(5.5)


def test_the_fastest_time_of_each_unit_in_any_run_is_used():
    # Sequential: decoding ended at 4.5, then both tasks ran at once and slowed each other
    # (3 s each); a partial run measured them alone (1 s and 2 s).
    sequential = timeline([unit(1, 4.5, 7.5, after=[]), unit(4, 4.5, 7.5, after=[])], 4.5, 7.5)
    partial = timeline([unit(1, 1, 2, after=[]), unit(4, 4, 6, after=[])], 4.5, 6.0)
    fastest = latency_bound.fastest_tool_times([sequential, partial])
    assert fastest == [1.0, 2.0]
    # f = 1 + 1 = 2 and 4 + 2 = 6 (with its own times: 4 + 3 = 7)
    assert latency_bound.bound_from_run(7.5, sequential, fastest) == pytest.approx(6.0)
    assert latency_bound.bound_from_run(7.5, sequential) == pytest.approx(7.0)


def test_a_drifting_machine_is_compared_round_by_round():
    # The machine slows down by half between rounds; partial saves 1 s in each round.
    records = [record("sequential", 8.0, round=0), record("client", 7.0, round=0),
               record("sequential", 12.0, round=1), record("client", 11.0, round=1)]  # fmt: skip
    cells = summarize_workload(records, skipped={"server": "n/a"})
    assert cells["client"]["reduction"] == pytest.approx(statistics.median([1 / 8, 1 / 12]))


def test_work_after_the_last_unit_is_added_once_at_the_end():
    # A tool whose finish() takes 3 s after its units (python: collecting the output).
    units = [unit(1, 5.0, 5.0), unit(2, 5.0, 5.0), unit(4, 5.0, 5.0)]
    tool = timeline(units, decode_end=5.0, ready=8.0)
    assert latency_bound.bound_from_run(latency_s=8.0, tool=tool) == pytest.approx(8.0)


def test_bound_of_an_aborted_call_ends_at_the_unit_that_aborted():
    # The 2nd of 3 fields was invalid; its check ran after decoding (sequential).
    units = [unit(1, 10.0, 10.1), unit(2, 10.1, 10.2), unit(9, None, None)]
    tool = timeline(units, decode_end=10.0, ready=10.2, status="aborted")
    # decoding could have stopped at 2 (+0.1 s check): 1.1 -> max(1.1, 2) + 0.1 = 2.1
    assert latency_bound.bound_from_run(latency_s=11.2, tool=tool) == pytest.approx(1.0 + 2.1)


def test_decoding_and_the_tool_wait_after_it_are_reported_apart():
    # Sequential: decoding ends at 4, then the units run (2 s + 1 s): a 3 s wait.
    seq_tool = timeline([unit(1, 4.0, 6.0), unit(2, 6.0, 7.0)], decode_end=4.0, ready=7.0)
    # Client, on a machine that happened to decode 25% slower: the units ran while decoding
    # (done at 3 and 4), the result was ready 0.2 s after decoding ended at 5.
    cli_tool = timeline([unit(1.25, 1.25, 3.25), unit(2.5, 3.25, 4.25)], decode_end=5.0, ready=5.2)
    assert latency_bound.tool_wait(seq_tool) == pytest.approx(3.0)
    assert latency_bound.sequential_wait_of_run(seq_tool) == pytest.approx(3.0)
    assert latency_bound.wait_bound_from_run(seq_tool) == pytest.approx(0.0)  # f = 3, 4 <= 4
    # Had the client run been sequential: 5 + 2 + 1 (+ its 0.2 s finish) -> a 3.2 s wait;
    # at best (its own decoding): done at 4.25 < 5, so only the 0.2 s finish.
    assert latency_bound.sequential_wait_of_run(cli_tool) == pytest.approx(3.2)
    assert latency_bound.wait_bound_from_run(cli_tool) == pytest.approx(0.2)
    records = [
        RunRecord("code", "sequential", 8.0, seq_tool, round=0),
        RunRecord("code", "client", 6.2 + 1.0, cli_tool, round=0),
    ]
    cells = summarize_workload(records, skipped={"server": "n/a"})
    client = cells["client"]
    assert (client["decode_s"], client["wait_s"]) == pytest.approx((5.0, 0.2))
    assert cells["sequential"]["decode_s"] == pytest.approx(4.0)
    # The run against itself, whatever decoding did: (3.2 - 0.2) / (3.2 - 0.2)
    assert client["wait_efficiency"] == pytest.approx(1.0)
    assert cells["sequential"]["wait_efficiency"] == pytest.approx(0.0)
    assert client["efficiency"] < 0.3  # the latency saw mostly the slower decoding


def test_efficiency_and_reduction():
    assert latency_bound.efficiency(10.0, 7.0, 6.0) == pytest.approx(0.75)
    assert latency_bound.efficiency(10.0, 10.5, 6.0) == pytest.approx(-0.125)
    assert latency_bound.efficiency(10.0, 9.0, 10.0) is None  # nothing to save
    assert latency_bound.reduction(10.0, 7.0) == pytest.approx(0.3)


def record(mode, latency, ready=None, round=0):
    units = [unit(1, 4.0, 6.0), unit(2, 6.0, 7.0)]
    tool = timeline(units, decode_end=4.0, ready=ready or latency - 1.0)
    return RunRecord("code", mode, latency, tool, round=round)


def test_cells_have_the_bound_efficiency_and_a_skip_reason():
    records = [record("sequential", 8.0, round=0), record("sequential", 8.2, round=1),
               record("client", 6.0, round=0)]  # fmt: skip
    cells = summarize_workload(records, skipped={"server": "no server mode here"})
    assert set(cells) == set(MODES)
    for mode in ("sequential", "client"):
        assert {"latency_s", "bound_s", "efficiency", "runs"} <= set(cells[mode])
    # Bounds: 1 + max(f=3, 4) = 5, and (finish takes 0.2 s) 1 + 4 + 0.2 = 5.2
    assert cells["sequential"]["latency_s"] == pytest.approx(8.1)
    assert cells["client"]["bound_s"] == pytest.approx(5.1)
    # Paired with round 0's sequential run (8.0 s, bound 5.0), not the medians
    assert cells["client"]["efficiency"] == pytest.approx((8.0 - 6.0) / (8.0 - 5.0))
    assert cells["client"]["reduction"] == pytest.approx(0.25)
    assert cells["server"] == {"latency_s": None, "bound_s": None, "efficiency": None,
                               "runs": 0, "skipped": "no server mode here"}  # fmt: skip


PROGRAM = ["import time\n", "time.sleep(0.3)\n", "x = sum(range(1000))\n", "time.sleep(0.3)\n",
           "print(x)\n"]  # fmt: skip
ANSWER_S = 0.05  # stands for the final decode after the result


def tool_run(partial: bool, round_no: int) -> RunRecord:
    """The python tool through the parser, a session and a worker process; the pauses
    between chunks stand for decoding."""
    result = run_tool("python", PROGRAM, partial=partial, chunk_interval=0.15, timeout=30)
    assert result.status == "ok", result.error
    tool = result.to_dict()
    mode = "client" if partial else "sequential"
    return RunRecord("code", mode, tool["result_ready_at"] + ANSWER_S, tool, round=round_no)


@pytest.mark.timeout(120)
def test_real_partial_runs_beat_sequential_and_respect_the_bound():
    records = [tool_run(partial, r) for r in range(2) for partial in (False, True)]
    cells = summarize_workload(records, skipped={"server": "not measured in this test"})
    seq, client = cells["sequential"], cells["client"]
    # The sleeps overlap the pauses between chunks only when the tool runs partially.
    assert client["latency_s"] < seq["latency_s"]
    assert seq["bound_s"] < seq["latency_s"]
    assert client["efficiency"] is not None and client["efficiency"] > 0
    assert client["wait_s"] < seq["wait_s"]
    assert cells["server"]["skipped"] == "not measured in this test"
