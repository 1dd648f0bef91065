"""The benchmark's figures and table, from a synthetic results dict (no server, no model)."""

from __future__ import annotations

import json
import statistics

import pytest
from bench_results import GROUPS, SAVINGS, make_results

from eval import bench_plots
from eval.bench_table import format_table

pytestmark = pytest.mark.timeout(120)

FIGURES = ("reduction_cdf", "wait_efficiency_cdf", "reduction_box", "load", "agents")


def test_every_figure_is_written_as_png_and_pdf(tmp_path):
    paths = bench_plots.draw_all(make_results(), tmp_path)
    names = {p.name for p in paths}
    stems = [*FIGURES, "early_abort", *(f"timeline_{g}" for g in GROUPS)]
    assert names == {f"fast-{stem}.{ext}" for stem in stems for ext in ("png", "pdf")}
    for path in paths:
        head = path.read_bytes()[:8]
        assert head.startswith(b"\x89PNG" if path.suffix == ".png" else b"%PDF"), path
        assert path.stat().st_size > 1000


def test_missing_agents_load_and_early_abort_draw_nothing_for_them(tmp_path):
    results = make_results(agents=False, load=False, early_abort=False)
    del results["agents"]  # missing, not only null
    names = {p.stem for p in bench_plots.draw_all(results, tmp_path)}
    assert not names & {"fast-load", "fast-agents", "fast-early_abort"}
    assert "fast-reduction_cdf" in names
    table = format_table(results)
    assert "load:" not in table and "early abort" not in table and "agents:" not in table


def test_the_table_gives_the_items_medians_per_group_and_mode():
    results = make_results()
    table = format_table(results)
    for group in GROUPS:
        for mode in ("client", "server"):
            items = [it for it in results["items"] if (it["group"], it["mode"]) == (group, mode)]
            red = statistics.median(it["reduction"] for it in items)
            weff = [it["wait_efficiency"] for it in items if it["wait_efficiency"] is not None]
            row = next(r for r in table.splitlines() if r.split()[:2] == [group, mode])
            assert f"{100 * red:+.1f}%" in row
            assert f"{statistics.median(weff):.2f} [" in row and f"n={len(weff)}" in row
    assert "early abort at the first exception: n=4" in table
    saving = f"{100 * statistics.median(SAVINGS):+.1f}% ["  # client mode's
    assert any(r.split()[:2] == ["client", "saving"] and saving in r for r in table.splitlines())
    assert "reduction +20.0%; throughput" in table  # the load's server reduction (one number)


def test_the_table_labels_the_baseline_marks_small_n_and_has_a_legend_per_part():
    lines = format_table(make_results()).splitlines()
    rows = [r for r in lines if r.split()[:1] == ["search"]]
    assert rows[0].split()[1:4] == ["sequential", "(baseline)", "5"]
    # Wait efficiency has 4 items (one without a wait to hide): marked; the others are not.
    assert rows[1].endswith("n=4 (too few to read)") and "n=5 (too few" not in rows[1]
    legends = [r for r in lines if r.startswith(("sequential (baseline):", "reduction:"))]
    legends += [r for r in lines if r.startswith(("median [p10, p90]", "  latency:"))]
    legends += [r for r in lines if r.startswith(("  reduction: of", "  off / on:"))]
    assert len(legends) == 6
    agents = next(r for r in lines if r.split()[:1] == ["client"] and "latency" in r)
    assert "n=3 (too few to read)" in agents


def test_early_abort_at_the_top_level_is_read_too(tmp_path):
    results = make_results()
    results["early_abort"] = {"n": 2, **results["early_abort"]["modes"]["client"]}
    assert [p.name for p in bench_plots.early_abort_figure(results, tmp_path)] == [
        "fast-early_abort.png",
        "fast-early_abort.pdf",
    ]
    row = next(r for r in format_table(results).splitlines() if r.split()[:1] == ["saving"])
    assert row.split()[1] == "+44.5%"  # the median of SAVINGS


@pytest.mark.parametrize(("key", "n"), [("reduction", 5), ("wait_efficiency", 4)])
def test_cdf_legend_names_each_group_with_its_item_count(key, n):
    fig = bench_plots.cdf_figure(make_results(), key, key)
    for ax in fig.axes:  # client, server
        labels = [t.get_text() for t in ax.get_legend().get_texts()]
        assert labels == [f"{group} (n={n})" for group in GROUPS]  # w.eff: one item has none


def test_the_command_draws_the_latest_results(tmp_path, capsys):
    path = tmp_path / "fast-latest.json"
    path.write_text(json.dumps(make_results()))
    assert bench_plots.main([str(path), "--out-dir", str(tmp_path / "plots")]) == 0
    out = capsys.readouterr().out
    assert "fast-reduction_box.pdf" in out and "code-light" in out
    assert (tmp_path / "plots" / "fast-load.png").exists()


def test_timeline_legend_names_every_mark():
    from eval.timeline_plot import LEGEND, timeline_figure

    results = make_results()
    # eval.results' shape: the run's latency beside the tool's timeline (the answer is drawn)
    runs = {m: {"latency_s": t["result_ready_at"] + 0.1, "tool": t}
            for m, t in results["groups"]["search"]["timeline"].items()}  # fmt: skip
    labels = [t.get_text() for t in timeline_figure("t", runs).axes[0].get_legend().get_texts()]
    assert labels == [label for _, label in LEGEND.values()]
    # The tool's own dict: no latency, so no answer bar, and the legend does not name one.
    fig = timeline_figure("t", results["groups"]["search"]["timeline"])
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert labels == [label for key, (_, label) in LEGEND.items() if key != "answer"]
