"""The validation tool: each argument is checked as it closes; the first bad one aborts."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from tool_drive import drive
from worker_fixtures import fresh_pool, no_leaked_workers

from conveyor_sgl.runtime.run_tool import run_tool
from conveyor_sgl.tools.validation import FieldValidator, ValidationTool

pytestmark = pytest.mark.timeout(60)
_leaks = pytest.fixture(autouse=True, name="no_leaked_workers")(no_leaked_workers)
_pool = pytest.fixture(name="pool")(fresh_pool)

SCHEMA = {
    "type": "object",
    "properties": {
        "city": {"type": "string", "minLength": 2},
        "unit": {"enum": ["celsius", "fahrenheit"]},
        "days": {"type": "integer", "minimum": 1, "maximum": 14},
        "where": {"$ref": "#/$defs/point"},
    },
    "required": ["city", "unit"],
    "additionalProperties": False,
    "$defs": {
        "point": {
            "type": "object",
            "properties": {"lat": {"type": "number", "minimum": -90, "maximum": 90}},
        }
    },
}
GOOD = '{"city": "Paris", "unit": "celsius", "days": 3, "where": {"lat": 48.9}}'


def check(arguments: str, config: dict | None = None):
    return drive(ValidationTool, arguments, {"schema": SCHEMA, **(config or {})})


def test_valid_arguments_come_back_as_json():
    driven = check(GOOD)
    assert driven.abort is None and driven.out.status == "ok"
    assert json.loads(driven.out.output) == json.loads(GOOD)


@pytest.mark.parametrize(
    ("arguments", "reason", "fed"),
    [
        (
            '{"city": "Paris", "unit": "kelvin", "days": 3}',
            "invalid argument 'unit': 'kelvin' is not one of ['celsius', 'fahrenheit']",
            2,
        ),
        ('{"city": "P", "unit": "celsius"}', "invalid argument 'city': 'P' is too short", 1),
        (
            '{"city": "Paris", "days": 30, "unit": "celsius"}',
            "invalid argument 'days': 30 is greater than the maximum of 14",
            2,
        ),
        (
            '{"city": "Paris", "days": "3"}',
            "invalid argument 'days': '3' is not of type 'integer'",
            2,
        ),
        (
            '{"where": {"lat": 91}, "city": "Paris"}',
            "invalid argument 'where': 91 is greater than the maximum of 90",
            1,
        ),
        (
            '{"city": "Paris", "country": "FR"}',
            "unexpected argument 'country' (allowed: city, days, unit, where)",
            2,
        ),
        ('{"city": "Paris", "city": "Lyon"}', "duplicate argument 'city'", 2),
    ],
)
def test_the_first_invalid_field_aborts_with_its_reason(arguments, reason, fed):
    driven = check(arguments)
    assert driven.abort == reason and driven.fed == fed
    assert (driven.out.status, driven.out.error) == ("aborted", reason)


def test_missing_required_fields_are_found_at_finish():
    out = check('{"city": "Paris"}').out
    assert (out.status, out.error) == ("error", "invalid arguments: 'unit' is a required property")


def test_additional_properties_schema_checks_unknown_fields():
    validator = FieldValidator({"type": "object", "additionalProperties": {"type": "integer"}})
    assert validator.field_error("any", 3) is None
    assert (
        validator.field_error("any", "x") == "invalid argument 'any': 'x' is not of type 'integer'"
    )


def test_a_configured_function_gets_the_validated_arguments():
    schema = {"type": "object", "properties": {"month": {"type": "integer", "maximum": 12}}}
    config = {"schema": schema, "function": "datetime:date"}
    out = drive(ValidationTool, '{"year": 2024, "month": 5, "day": 17}', config).out
    assert (out.status, out.output) == ("ok", "2024-05-17")
    failed = drive(ValidationTool, '{"year": 2024, "month": 2, "day": 30}', config).out
    assert failed.status == "error"
    assert failed.error == "function raised ValueError: day is out of range for month"


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({}, "needs config\\['schema'\\]"),
        ({"schema": {"type": "nonsense"}}, "is not valid under any of the given schemas"),
        ({"schema": SCHEMA, "function": "datetime"}, "must look like 'module:callable'"),
        ({"schema": SCHEMA, "function": "math:pi"}, "is not callable"),
    ],
)
def test_bad_config_is_an_error_at_start(config, message):
    with pytest.raises(Exception, match=message):
        ValidationTool().start(config)


def test_cancel_ends_with_aborted():
    tool = ValidationTool()
    tool.start({"schema": SCHEMA})
    tool.cancel()
    assert (tool.finish().status, tool.finish().error) == ("aborted", "cancelled")


def test_in_a_worker_an_invalid_field_stops_decoding_early(pool):
    text = '{"city": "Paris", "unit": "kelvin", "days": 3, "where": {"lat": 1}}'
    pieces = [text[i : i + 4] for i in range(0, len(text), 4)]
    consumed: list[str] = []

    def decoding() -> Iterator[str]:
        for piece in pieces:
            consumed.append(piece)
            yield piece

    result = run_tool(
        "validation", decoding(), pool=pool, config={"schema": SCHEMA}, chunk_interval=0.05
    )
    assert result.status == "aborted"
    assert (
        result.error == "invalid argument 'unit': 'kelvin' is not one of ['celsius', 'fahrenheit']"
    )
    assert len(consumed) < len(pieces)  # the rest of the call was never decoded
    assert [u["text"] for u in result.units] == ['"city": "Paris"', '"unit": "kelvin"']


def test_in_a_worker_valid_arguments_pass(pool):
    result = run_tool("validation", list(GOOD), pool=pool, config={"schema": SCHEMA})
    assert result.status == "ok" and json.loads(result.output) == json.loads(GOOD)
    missing = run_tool("validation", '{"unit": "celsius"}', pool=pool, config={"schema": SCHEMA})
    assert (missing.status, missing.error) == (
        "error",
        "invalid arguments: 'city' is a required property",
    )
