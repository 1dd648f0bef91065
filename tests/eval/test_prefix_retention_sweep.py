"""The retention sweep's own pieces (the sweep itself runs a server: `python -m
eval.prefix_retention_sweep`)."""

from __future__ import annotations

from eval.prefix_retention_sweep import _hold_delta, prefixes, table


def test_each_program_has_its_own_prefix_and_a_run_repeats_them():
    first = prefixes(8, 270, "run")
    assert len(set(first)) == 8 and first == prefixes(8, 270, "run")
    assert all(len(p.split()) == 270 + 3 for p in first)


def test_the_point_counts_what_one_run_did_to_the_holds():
    before = {"taken": 3, "refused": 0, "released": {"continued": 2, "pressure": 1}}
    after = {"taken": 10, "refused": 1, "released": {"continued": 6, "pressure": 3}}
    assert _hold_delta(before, after) == {"taken": 7, "refused": 1, "continued": 4, "pressure": 2}


def test_the_table_has_a_row_per_point():
    point = {
        "programs": 8,
        "mode": "server",
        "holds": "on",
        "kept": 5,
        "errors": 0,
        "answer_latency_s": 0.1,
        "program_wall_s": 3.0,
        "throughput_programs_per_s": 2.6,
        "evicted_tokens": 3335.0,
        "holds_state": {"taken": 5, "continued": 4},
    }
    rows = table([point]).splitlines()
    assert len(rows) == 3 and "5/8" in rows[2] and "taken 5, continued 4" in rows[2]
