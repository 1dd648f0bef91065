"""run_tool end to end: overlap with decoding, the sequential baseline, parallel sessions."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from worker_fixtures import fresh_pool, no_leaked_workers

from conveyor_sgl.runtime.run_tool import run_tool

pytestmark = pytest.mark.timeout(30)
_leaks = pytest.fixture(autouse=True, name="no_leaked_workers")(no_leaked_workers)
_pool = pytest.fixture(name="pool")(fresh_pool)

LINES = ["alpha\n", "beta\n", "gamma\n", "delta\n", "omega\n"]


def test_echo_end_to_end(pool):
    result = run_tool("echo", ["alp", "ha\nbe", "ta\n", "gamma"], pool=pool)
    assert (result.status, result.output, result.error) == ("ok", "ALPHA\nBETA\nGAMMA", None)
    assert [u["text"] for u in result.units] == ["alpha\n", "beta\n", "gamma"]
    for unit in result.units:
        assert 0 <= unit["decoded_at"] <= unit["sent_at"] <= unit["started_at"]
        assert unit["started_at"] <= unit["finished_at"]


def test_a_string_is_one_chunk_and_chunking_does_not_matter(pool):
    text = "".join(LINES)
    whole = run_tool("echo", text, pool=pool)
    pieces = run_tool("echo", [text[i : i + 3] for i in range(0, len(text), 3)], pool=pool)
    assert whole.output == pieces.output == "ALPHA\nBETA\nGAMMA\nDELTA\nOMEGA"
    assert [u["text"] for u in whole.units] == [u["text"] for u in pieces.units] == LINES


@pytest.mark.timing
def test_units_run_while_later_chunks_are_still_arriving(pool):
    result = run_tool("echo", LINES, pool=pool, chunk_interval=0.05)
    units = result.units
    assert units[0]["started_at"] < units[-1]["decoded_at"]
    assert units[-1]["decoded_at"] >= 0.2  # four intervals of simulated decoding


@pytest.mark.timing
def test_decoded_at_is_when_the_finishing_chunk_arrived(pool):
    def slow_chunks() -> Iterator[str]:
        yield "a\nb"
        time.sleep(0.2)
        yield "\n"

    units = run_tool("echo", slow_chunks(), pool=pool).units
    assert units[1]["decoded_at"] - units[0]["decoded_at"] >= 0.2


def test_sequential_baseline_sends_everything_at_the_end(pool):
    result = run_tool("echo", LINES, pool=pool, partial=False, chunk_interval=0.03)
    last_decoded = max(u["decoded_at"] for u in result.units)
    assert result.output == "ALPHA\nBETA\nGAMMA\nDELTA\nOMEGA"
    assert all(u["sent_at"] >= last_decoded for u in result.units)
    assert all(u["started_at"] >= last_decoded for u in result.units)


@pytest.mark.timing
def test_a_tool_without_partial_input_runs_at_the_end(pool):
    result = run_tool("batch_echo", LINES, pool=pool, chunk_interval=0.03)
    last_decoded = max(u["decoded_at"] for u in result.units)
    assert result.output.endswith("ALPHA BETA GAMMA DELTA OMEGA")
    assert all(u["sent_at"] < last_decoded for u in result.units[:-1])  # sent at once...
    assert all(u["started_at"] >= last_decoded for u in result.units)  # ...run at finish


def test_partial_execution_hides_tool_time_behind_decoding(pool):
    config = {"delay_s": 0.1}
    partial = run_tool("echo", LINES, pool=pool, config=config, chunk_interval=0.1)
    sequential = run_tool(
        "echo", LINES, pool=pool, config=config, chunk_interval=0.1, partial=False
    )
    # decode 0.4 s, tool 0.5 s: about 0.5 s with overlap, about 0.9 s without.
    saved = latency(sequential) - latency(partial)
    assert saved > 0.2, saved


def latency(result) -> float:
    """From the first chunk to the result (leaves out acquiring the worker)."""
    return result.to_dict()["result_ready_at"] - result.units[0]["decoded_at"]


def test_an_abort_stops_consuming_chunks(pool):
    consumed = []

    def chunks() -> Iterator[str]:
        for line in ["a\n", "stop: no\n", "b\n", "c\n", "d\n"]:
            consumed.append(line)
            yield line

    result = run_tool("aborting", chunks(), pool=pool, chunk_interval=0.1)
    assert result.status == "aborted" and result.error == "invalid argument: stop: no"
    assert len(consumed) < 5


def test_two_sessions_in_parallel_never_mix_units(pool):
    results = {}

    def run(prefix: str) -> None:
        lines = [f"{prefix}{i}\n" for i in range(8)]
        results[prefix] = run_tool("echo", lines, pool=pool, chunk_interval=0.01)

    threads = [threading.Thread(target=run, args=(p,)) for p in ("left", "right")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    for prefix in ("left", "right"):
        expected = [f"{prefix}{i}".upper() for i in range(8)]
        assert results[prefix].output.split("\n") == expected
        assert [u["text"] for u in results[prefix].units] == [f"{prefix}{i}\n" for i in range(8)]


@pytest.mark.timing
def test_a_hanging_tool_times_out(pool):
    t = time.monotonic()
    result = run_tool("hang", ["a\n", "hang\n"], pool=pool, timeout=0.3)
    assert result.status == "timeout" and time.monotonic() - t < 2.0


def test_the_public_re_export():
    import conveyor_sgl

    assert conveyor_sgl.run_tool is run_tool
