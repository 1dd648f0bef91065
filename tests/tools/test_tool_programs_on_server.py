"""Tool-suite example programs end to end on the real SGLang server (CPU, embedded model)."""

from __future__ import annotations

import json

import pytest
from tool_drive import drive, first_started_before_last_decoded

from conveyor_sgl.tools.calculator import CalculatorTool
from conveyor_sgl.tools.sql import SqlTool
from programs import calculator_agent, sql_agent, validated_call

pytestmark = pytest.mark.server


@pytest.mark.timing
def test_calculator_agent_runs_each_line_while_decoding(backend):
    state = calculator_agent.run_once(True)
    tool = state.get_meta_info("lines")["tool"]
    assert state["lines"] == calculator_agent.REFERENCE_LINES
    expected = drive(CalculatorTool, calculator_agent.REFERENCE_LINES).out.output
    assert (tool["status"], tool["output"]) == ("ok", expected)
    assert "```\nResults:\n" + expected in state.text()
    assert len(tool["units"]) == 5
    assert first_started_before_last_decoded(tool["units"])


@pytest.mark.timing
def test_sql_agent_starts_ddl_and_inserts_before_the_query_is_decoded(backend):
    state = sql_agent.run_once(True)
    tool = state.get_meta_info("sql")["tool"]
    expected = drive(SqlTool, sql_agent.REFERENCE_SQL, sql_agent.CONFIG).out.output
    assert (tool["status"], tool["output"]) == ("ok", expected)
    assert "ada      | 42.5    | 2" in tool["output"]
    units = tool["units"]
    # Started, not finished: how long the INSERT takes is the database's, and a stalled
    # stream can hand both statements over within milliseconds.
    assert len(units) == 3 and units[1]["started_at"] <= units[2]["decoded_at"]


def test_sql_agent_sequential_baseline_gives_the_same_result(backend):
    partial = sql_agent.run_once(True).get_meta_info("sql")["tool"]
    sequential = sql_agent.run_once(False).get_meta_info("sql")["tool"]
    assert sequential["output"] == partial["output"]
    last_decoded = max(u["decoded_at"] for u in sequential["units"])
    assert all(u["started_at"] >= last_decoded for u in sequential["units"])


def test_validated_call_passes_a_valid_call(backend):
    state = validated_call.run_once(True)
    tool = state.get_meta_info("arguments")["tool"]
    assert tool["status"] == "ok"
    assert json.loads(tool["output"]) == json.loads(validated_call.VALID_CALL)
    assert "}\nValidated call: " + tool["output"] in state.text()


def test_validated_call_aborts_decoding_at_the_first_invalid_field(backend):
    state = validated_call.run_once(True, validated_call.INVALID_CALL)
    tool = state.get_meta_info("arguments")["tool"]
    reason = "invalid argument 'unit': 'kelvin' is not one of ['celsius', 'fahrenheit']"
    assert (tool["status"], tool["error"]) == ("aborted", reason)
    # Decoding stopped soon after the bad field: the long "note" was never decoded.
    assert '"kelvin"' in state["arguments"]
    assert len(state["arguments"]) < len(validated_call.INVALID_CALL) // 2
    assert "Validated call: " + reason in state.text()
