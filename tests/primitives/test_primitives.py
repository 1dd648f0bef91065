"""The frontend primitives without a server: IR, tracing, the hook, the token ledger."""

from __future__ import annotations

import pytest
import sglang as sgl
from sglang.lang import interpreter

from conveyor_sgl import partial_tool, tool_result
from conveyor_sgl.primitives import hook
from conveyor_sgl.primitives.endpoint import GenerateEvent
from conveyor_sgl.primitives.executor import appended_text
from conveyor_sgl.primitives.ir import SglPartialTool, SglToolResult
from conveyor_sgl.primitives.token_ledger import TokenLedger, ledger_after, visible_text


def test_pinned_sglang_private_api_is_what_we_hook():
    # Fails loudly when sglang is upgraded and the interpreter internals we use move.
    hook.check_hooked_api()
    assert hasattr(interpreter.StreamExecutor._execute, "__conveyor_original__")


def test_install_is_idempotent():
    before = interpreter.StreamExecutor._execute
    hook.install()
    assert interpreter.StreamExecutor._execute is before


def test_partial_tool_takes_gen_arguments():
    node = partial_tool(
        "code", tool="python", stop="```", max_tokens=77, temperature=0.5, regex=r"print\(1\)"
    )
    assert isinstance(node, SglPartialTool) and isinstance(node, sgl.lang.ir.SglGen)
    params = node.sampling_params
    assert (params.stop, params.max_new_tokens, params.temperature) == ("```", 77, 0.5)
    assert params.regex == r"print\(1\)"
    assert node.tool == "python" and node.partial is True


def test_bad_programs_fail_when_built():
    with pytest.raises(ValueError, match="no_such_tool"):
        partial_tool("x", tool="no_such_tool")
    with pytest.raises(TypeError):
        partial_tool("x", tool="python", max_tokenz=3)
    with pytest.raises(ValueError):
        tool_result("x", timeout=0)


@sgl.function
def _solver(s, task):
    s += sgl.user(task)
    s += sgl.assistant_begin()
    s += "```python\n" + partial_tool("code", tool="python", stop="```", max_tokens=64)
    s += "```\nOutput:\n" + tool_result("code")
    s += sgl.gen("answer", max_tokens=8)
    s += sgl.assistant_end()


def test_programs_with_primitives_trace_like_stock_programs():
    tracer = _solver.trace()
    nodes = tracer.flatten_nodes()
    assert any(isinstance(n, SglPartialTool) and n.name == "code" for n in nodes)
    assert any(isinstance(n, SglToolResult) and n.name == "code" for n in nodes)
    assert "code" in tracer.variables and "answer" in tracer.variables


class _FakeTokenizer:
    """Stands in for the server's /tokenize in this unit test of the ledger."""

    def tokenize(self, text: str) -> list[int]:
        return [ord(c) for c in text]


def test_ledger_reuses_exact_ids_for_covered_prefix():
    ledger = TokenLedger("PROMPT", (1, 2), "code```", (7, 8, 9))
    tok = _FakeTokenizer()
    assert ledger.prompt_for("PROMPTcode```\nOut", tok) == {
        "input_ids": [1, 2, 7, 8, 9] + [ord(c) for c in "\nOut"]
    }
    # The output was changed by the program: fall back to the prompt's ids only.
    assert ledger.prompt_for("PROMPTcodX", tok)["input_ids"][:2] == [1, 2]
    assert ledger.prompt_for("other", tok) == {"text": "other"}


def _event(text, ids, finish, prompt_ids=(5,)):
    return GenerateEvent(text, list(ids), {"finish_reason": finish}, list(prompt_ids))


def test_stop_string_is_trimmed_for_the_program_but_kept_in_the_ledger():
    final = _event("x = 1\n```", [1, 2, 3], {"type": "stop", "matched": "```"})
    assert visible_text(final) == "x = 1\n"
    ledger = ledger_after("P", final)
    assert ledger.output_text == "x = 1\n```" and ledger.output_ids == (1, 2, 3)


def test_stop_token_is_left_out_of_the_ledger():
    final = _event("abc", [1, 2, 99], {"type": "stop", "matched": 99})
    assert visible_text(final) == "abc"
    assert ledger_after("P", final).output_ids == (1, 2)


def test_appended_text_shows_errors_once():
    assert appended_text("ok", "3\n", None) == "3\n"
    assert appended_text("error", "1\n", "ZeroDivisionError: division by zero") == (
        "1\nZeroDivisionError: division by zero"
    )
    assert appended_text("error", "Traceback...\nNameError: x\n", "NameError: x") == (
        "Traceback...\nNameError: x\n"
    )


def test_the_public_api_resolves_and_its_errors_share_one_root():
    import conveyor_sgl

    values = {name: getattr(conveyor_sgl, name) for name in conveyor_sgl.__all__}
    errors = [v for n, v in values.items() if n.endswith(("Error", "Unavailable"))]
    assert len(errors) >= 6
    assert all(issubclass(e, conveyor_sgl.ConveyorError) for e in errors)
    # Each keeps its standard base for code that already catches it.
    assert issubclass(conveyor_sgl.ParseError, ValueError)
    assert issubclass(conveyor_sgl.PoolBusyError, RuntimeError)
