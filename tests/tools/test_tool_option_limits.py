"""Options that bound a resource (bits, digits, rows, results, threads, seconds) are limits a
config, so a server request, may only tighten: a value above the packaged maximum is refused
with an error naming the option and the maximum; lower values work. One helper,
``option_limit``, does it for every tool."""

from __future__ import annotations

import math

import pytest
from tool_drive import drive

from conveyor_sgl.errors import ConveyorError
from conveyor_sgl.tools.base import ToolConfigError, ToolConfigTypeError, option_limit
from conveyor_sgl.tools.calculator import CalculatorTool
from conveyor_sgl.tools.planner import PlannerTool
from conveyor_sgl.tools.registry import check_tool
from conveyor_sgl.tools.search import SearchTool
from conveyor_sgl.tools.sql import SqlTool

pytestmark = pytest.mark.timeout(60)


def test_a_value_above_the_default_is_refused_naming_option_and_maximum():
    with pytest.raises(ToolConfigError) as refused:
        option_limit({"k": 4}, "k", 3, integer=True)
    error = refused.value
    assert isinstance(error, ConveyorError) and isinstance(error, ValueError)
    assert str(error) == (
        "k 4 is above its maximum 3: this option bounds a resource and a config may only "
        "tighten it (give k <= 3, or leave it out)"
    )


def test_the_default_and_lower_values_pass():
    assert option_limit({}, "k", 3, integer=True) == 3
    assert option_limit({"k": 3}, "k", 3, integer=True) == 3
    assert option_limit({"k": 1}, "k", 3, integer=True) == 1
    assert option_limit({"k": 0}, "k", 3, integer=True, zero_ok=True) == 0
    assert option_limit({"d": 500}, "d", 0.0, maximum=1000.0, zero_ok=True) == 500


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, 1e308 * 10])
def test_non_finite_numbers_are_refused(value):
    with pytest.raises(ToolConfigError, match="must be a positive number"):
        option_limit({"t": value}, "t", 10.0)


@pytest.mark.parametrize("value", [True, "3", None, [3], 2.5])
def test_wrong_types_are_type_errors(value):
    with pytest.raises(ToolConfigTypeError) as refused:
        option_limit({"k": value}, "k", 3, integer=True)
    assert isinstance(refused.value, TypeError) and isinstance(refused.value, ConveyorError)


# Every bounded option of the tools that parse request input: (tool, config, option, maximum).
LOOSENED = [
    (CalculatorTool, {"max_int_bits": 4097}, "max_int_bits", "4096"),
    (CalculatorTool, {"max_int_bits": 10**9}, "max_int_bits", "4096"),
    (CalculatorTool, {"precision": 18}, "precision", "17"),
    (SqlTool, {"max_rows": 51}, "max_rows", "50"),
    (SqlTool, {"max_rows": 10**12}, "max_rows", "50"),
    (SearchTool, {"top_k": 4}, "top_k", "3"),
    (SearchTool, {"concurrency": 5}, "concurrency", "4"),
    (SearchTool, {"timeout_s": 10.5}, "timeout_s", "10.0"),
    (SearchTool, {"delay_ms": 10001}, "delay_ms", "10000.0"),
    (PlannerTool, {"search": {"top_k": 100}}, "top_k", "3"),
    (PlannerTool, {"search": {"timeout_s": 1e9}}, "timeout_s", "10.0"),
    (PlannerTool, {"concurrency": 5}, "concurrency", "4"),
    (PlannerTool, {"timeout_s": 31}, "timeout_s", "30.0"),
]


@pytest.mark.parametrize(("tool", "config", "option", "maximum"), LOOSENED)
def test_each_tool_refuses_a_loosened_bound(tool, config, option, maximum):
    with pytest.raises(ToolConfigError, match=rf"{option} .* is above its maximum {maximum}:"):
        tool.check_config(config)
    name = {CalculatorTool: "calculator", SqlTool: "sql", SearchTool: "search"}.get(tool, "planner")
    with pytest.raises(ValueError, match=rf"tool '{name}': bad config: .*{option}"):
        check_tool(name, config)


@pytest.mark.parametrize(("tool", "config", "option", "maximum"), LOOSENED[:5])
def test_start_refuses_it_too(tool, config, option, maximum):
    with pytest.raises(ToolConfigError, match=f"maximum {maximum}"):
        tool().start(config)


@pytest.mark.parametrize(
    ("tool", "config"),
    [
        (CalculatorTool, {"max_int_bits": 4096, "precision": 17}),
        (CalculatorTool, {"max_int_bits": 64, "precision": 3}),
        (SqlTool, {"max_rows": 50}),
        (SqlTool, {"max_rows": 0}),
        (SearchTool, {"top_k": 3, "concurrency": 4, "timeout_s": 10, "delay_ms": 10000}),
        (SearchTool, {"top_k": 1, "concurrency": 1, "timeout_s": 0.5, "delay_ms": 700}),
        (PlannerTool, {"search": {"top_k": 1, "delay_ms": 700}, "concurrency": 4}),
    ],
)
def test_the_maxima_and_tighter_values_pass(tool, config):
    tool.check_config(config)


def test_a_tightened_calculator_bound_holds():
    driven = drive(CalculatorTool, "2 ** 100\n", {"max_int_bits": 64})
    assert driven.out.status == "error" and "over 64 bits" in driven.out.error
    assert drive(CalculatorTool, "2 ** 100\n").out.output == f"2 ** 100 = {2**100}\n"
    loose = drive(CalculatorTool, "1 / 3\n", {"precision": 17}).out.output
    assert loose == "1 / 3 = 0.33333333333333331\n"


def test_a_tightened_row_limit_holds():
    script = "CREATE TABLE n(i); INSERT INTO n VALUES (1),(2),(3);\nSELECT i FROM n;\n"
    output = drive(SqlTool, script, {"max_rows": 1}).out.output
    assert output.endswith("(3 rows, 2 not shown)\n")


def test_other_config_errors_are_conveyor_errors_too():
    for tool, config in [
        (SqlTool, {"nonsense": 1}),
        (SqlTool, {"database": ""}),
        (SqlTool, {"files_root": "relative"}),
        (SqlTool, {"setup": 3}),
        (SearchTool, {"service_url": "ftp://x"}),
        (CalculatorTool, {"precision": 0}),
    ]:
        with pytest.raises(ConveyorError):
            tool.check_config(config)
