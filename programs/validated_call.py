"""A function-calling program: each argument is validated the moment it closes.

    python -m programs.validated_call [--url URL]

The arguments are checked field by field against a JSON Schema; the first invalid field
stops decoding at once, so the program gets status ``aborted`` with the reason and does not
pay for decoding the rest of the call. The calls are forced with a regex (random weights).
"""

from __future__ import annotations

import sglang as sgl
from sglang.lang.interpreter import ProgramState

from conveyor_sgl import partial_tool, tool_result
from programs.code_solver import forced
from programs.runner import checked, demo

TASK = "What will the weather be in Paris over the next three days, in celsius?"
SCHEMA = {
    "type": "object",
    "properties": {
        "city": {"type": "string", "minLength": 2},
        "unit": {"enum": ["celsius", "fahrenheit"]},
        "days": {"type": "integer", "minimum": 1, "maximum": 14},
        "hourly": {"type": "boolean"},
        "note": {"type": "string", "maxLength": 200},
    },
    "required": ["city", "unit", "days"],
    "additionalProperties": False,
}
VALID_CALL = (
    '{"city": "Paris", "unit": "celsius", "days": 3, "hourly": false, '
    '"note": "three-day forecast for a weekend trip, daily highs and lows only"}'
)
# The second field is invalid: everything after it is never decoded.
INVALID_CALL = VALID_CALL.replace('"celsius"', '"kelvin"')


@sgl.function
def call_forecast(s, task, args_regex=None, partial=True):
    s += sgl.user(task)
    s += sgl.assistant_begin()
    s += '{"name": "get_forecast", "arguments": ' + partial_tool(
        "arguments",
        tool="validation",
        partial=partial,
        config={"schema": SCHEMA},
        stop="\n",
        max_tokens=256,
        regex=args_regex,
    )
    s += "}\nValidated call: " + tool_result("arguments", timeout=60) + "\n"
    s += sgl.gen("answer", max_tokens=24)
    s += sgl.assistant_end()


def run_once(partial: bool, arguments: str = VALID_CALL) -> ProgramState:
    regex = forced(arguments, "\n")
    return checked(call_forecast.run(TASK, args_regex=regex, partial=partial))


def show_invalid_call() -> None:
    state = run_once(True, INVALID_CALL)
    tool = state.get_meta_info("arguments")["tool"]
    tokens = state.get_meta_info("arguments")["completion_tokens"]
    print("\n=== an invalid call, partial execution ===")
    print(f"status={tool['status']} error={tool['error']}")
    print(f"decoded {len(state['arguments'])} of {len(INVALID_CALL)} characters ({tokens} tokens)")


if __name__ == "__main__":
    demo(__doc__.splitlines()[0], run_once, "arguments", extra=show_invalid_call)
