"""The calculator tool: whitelisted arithmetic, capped results, errors as data."""

from __future__ import annotations

import math
import re
import time

import pytest
from tool_drive import drive, first_started_before_last_decoded
from worker_fixtures import fresh_pool, no_leaked_workers

from conveyor_sgl.runtime.run_tool import run_tool
from conveyor_sgl.tools.calculator import CalculatorError, CalculatorTool, Evaluator

pytestmark = pytest.mark.timeout(60)
_leaks = pytest.fixture(autouse=True, name="no_leaked_workers")(no_leaked_workers)
_pool = pytest.fixture(name="pool")(fresh_pool)

LINES = ["1 + 2 * 3\n", "r = 2.5\n", "pi * r ** 2\n", "sqrt(16) + 7 // 2\n", "10 % 4 == 2\n"]


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("1 + 2 * 3", 7),
        ("(1 + 2) * 3", 9),
        ("-2 ** 2", -4),
        ("7 / 2", 3.5),
        ("7 // 2", 3),
        ("2 ** -1", 0.5),
        ("max(3, 9, 4) - abs(-2)", 7),
        ("log(e) + cos(0)", 2.0),
        ("hypot(3, 4)", 5.0),
        ("factorial(10)", 3628800),
        ("1 < 2 <= 2", 1),
        ("3 > 4", 0),
        ("2 ** 4000", 2**4000),
    ],
)
def test_expressions_evaluate_like_python(line, expected):
    assert Evaluator().run_line(line) == (None, expected)


def test_assigned_names_carry_to_later_lines():
    evaluator = Evaluator()
    assert evaluator.run_line("r = 3") == ("r", 3)
    assert evaluator.run_line("area = pi * r ** 2") == ("area", math.pi * 9)
    assert evaluator.run_line("area / r") == (None, math.pi * 3)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("__import__('os')", "unsupported function call '__import__'"),
        ("__import__('os').system('true')", "unsupported function call"),
        ("(1).__class__", "unsupported syntax Attribute"),
        ("lambda: 1", "unsupported syntax Lambda"),
        ("'a' * 3", "unsupported literal 'a'"),
        ("[1, 2]", "unsupported syntax List"),
        ("undefined + 1", "unknown name 'undefined'"),
        ("x = y = 1", "unsupported statement Assign"),
        ("import os", "unsupported statement Import"),
        ("1 +", "not an expression"),
        ("1; 2", "one expression per line"),
        ("sqrt(x=4)", "unsupported function call 'sqrt'"),
        ("1 in 2", "unsupported comparison In"),
    ],
)
def test_anything_outside_the_whitelist_is_refused(line, message):
    with pytest.raises(CalculatorError, match=re.escape(message)):
        Evaluator().run_line(line)


@pytest.mark.timing
@pytest.mark.parametrize(
    "line", ["9 ** 9 ** 9", "2 ** 5000", "factorial(100000)", "comb(10**6, 5)"]
)
def test_huge_results_are_refused_before_they_are_computed(line):
    t = time.monotonic()
    with pytest.raises(CalculatorError, match=r"too large|argument above"):
        Evaluator(max_int_bits=4096).run_line(line)
    assert time.monotonic() - t < 1.0


def test_a_product_of_big_numbers_is_capped_too():
    evaluator = Evaluator(max_int_bits=64)
    with pytest.raises(CalculatorError, match="over 64 bits"):
        evaluator.run_line("2 ** 40 * 2 ** 40")


def test_tool_output_lists_each_result():
    driven = drive(CalculatorTool, LINES)
    assert driven.out.status == "ok" and driven.out.error is None
    assert driven.out.output == (
        "1 + 2 * 3 = 7\nr = 2.5\npi * r ** 2 = 19.6349540849\n"
        "sqrt(16) + 7 // 2 = 7\n10 % 4 == 2 = 1\n"
    )


def test_precision_is_configurable():
    assert drive(CalculatorTool, "1 / 3\n", {"precision": 4}).out.output == "1 / 3 = 0.3333\n"


def test_first_failing_line_stops_the_run_and_is_named():
    out = drive(CalculatorTool, "1 + 1\n1 / 0\n2 + 2\n").out
    assert (out.status, out.error) == ("error", "line 2: ZeroDivisionError: division by zero")
    assert out.output == "1 + 1 = 2\n"


def test_cancel_ends_with_aborted():
    tool = CalculatorTool()
    tool.start({})
    tool.cancel()
    out = tool.finish()
    assert (out.status, out.error) == ("aborted", "cancelled")


@pytest.mark.parametrize("config", [{"precision": 0}, {"max_int_bits": "big"}, {"precision": True}])
def test_bad_config_is_an_error_at_start(config):
    with pytest.raises((TypeError, ValueError), match="must be a positive integer"):
        CalculatorTool().start(config)


@pytest.mark.timing
def test_in_a_worker_each_line_runs_while_later_ones_decode(pool):
    result = run_tool("calculator", LINES, pool=pool, chunk_interval=0.05)
    assert result.status == "ok"
    assert result.output == drive(CalculatorTool, LINES).out.output
    assert first_started_before_last_decoded(result.units)


def test_in_a_worker_chunking_does_not_change_the_result(pool):
    text = "".join(LINES)
    by_char = run_tool("calculator", list(text), pool=pool)
    whole = run_tool("calculator", text, pool=pool)
    assert by_char.output == whole.output == drive(CalculatorTool, text).out.output


def test_in_a_worker_errors_are_data(pool):
    result = run_tool("calculator", "2 ** 2\nopen('/etc/passwd')\n", pool=pool)
    assert result.status == "error"
    assert result.error == "line 2: unsupported function call 'open'"
    # A bad option fails before any worker is used, naming the tool and the option.
    with pytest.raises(ValueError, match="tool 'calculator': bad config: precision must be"):
        run_tool("calculator", "1\n", pool=pool, config={"precision": -1})
