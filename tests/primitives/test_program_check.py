"""User mistakes are ConveyorErrors that say what to change, and a program that cannot work
fails from ``.run()`` before it sends anything: a fake backend records every request."""

from __future__ import annotations

import re
from typing import Any

import pytest
import sglang as sgl
from sglang.lang.backend.base_backend import BaseBackend
from sglang.lang.global_config import global_config

import conveyor_sgl
import conveyor_sgl as cs
from conveyor_sgl import (
    BackendError,
    ConveyorError,
    ProgramError,
    ToolCallError,
    ToolConfigError,
    ToolError,
    ToolSpec,
    UnknownToolError,
    partial_tool,
    register_tool,
    tool_result,
)
from conveyor_sgl import tool_result as take_result
from conveyor_sgl.primitives.openai_tools import ToolCall
from conveyor_sgl.primitives.program_check import check_program


class FakeBackend(BaseBackend):
    """Answers every generation with "yes" and records each request."""

    def __init__(self) -> None:
        super().__init__()
        self.requests: list[str] = []

    def generate(self, s: Any, sampling_params: Any) -> tuple[str, dict]:
        self.requests.append("generate")
        return "yes", {}

    def generate_stream(self, s: Any, sampling_params: Any):
        self.requests.append("generate_stream")
        yield "yes", {}

    def select(self, s: Any, choices: Any, temperature: Any, choices_method: Any) -> Any:
        self.requests.append("select")
        raise AssertionError("no program here selects")

    def cache_prefix(self, prefix_str: str) -> None:
        self.requests.append("cache_prefix")


@pytest.fixture
def fake() -> FakeBackend:
    return FakeBackend()


@sgl.function
def no_partial_tool(s):
    s += "Q: " + sgl.gen("a", max_tokens=4)
    s += "\nCode:\n" + sgl.gen("code", max_tokens=8)  # a plain gen: no tool runs it
    s += tool_result("code")


@sgl.function
def misspelt(s):
    s += "Code:\n" + partial_tool("code", tool="python", max_tokens=8)
    s += tool_result("cod")


@sgl.function
def taken_twice(s):
    s += "Code:\n" + partial_tool("code", tool="python", max_tokens=8)
    s += tool_result("code")
    s += sgl.gen("answer", max_tokens=4)
    s += tool_result("code")


@sgl.function
def aliased(s):
    s += sgl.gen("a", max_tokens=4) + take_result("x")


@sgl.function
def through_the_module(s):
    s += sgl.gen("a", max_tokens=4) + cs.tool_result("x")


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize(
    ("program", "message"),
    [
        (no_partial_tool, "add s += partial_tool('code', tool=...) before it"),
        (misspelt, "tool_result('cod') has no partial_tool('cod') before it in this program "),
        (taken_twice, "the result of partial_tool('code') was already taken"),
        (aliased, "tool_result('x') has no partial_tool('x')"),
        (through_the_module, "tool_result('x') has no partial_tool('x')"),
    ],
)
def test_a_result_without_its_partial_tool_fails_before_any_request(fake, program, message, stream):
    with pytest.raises(ProgramError, match=re.escape(message)) as e:
        program.run(backend=fake, stream=stream)
    assert isinstance(e.value, ConveyorError) and isinstance(e.value, ValueError)
    assert fake.requests == []


def test_the_message_names_the_partial_tools_there_are(fake):
    with pytest.raises(ProgramError, match=r"its partial tools so far: 'code'"):
        misspelt.run(backend=fake)


@sgl.function
def reads_first(s):
    s += "Q: " + sgl.gen("a", max_tokens=4)
    if s["a"] == "yes":  # what follows depends on the model: the check stops here
        s += tool_result("code")


def test_after_a_read_of_the_models_text_the_executor_still_refuses(fake):
    state = reads_first.run(backend=fake)
    assert isinstance(state.error(), ProgramError)
    assert "add s += partial_tool('code', tool=...)" in str(state.error())
    assert fake.requests == ["generate"]


@sgl.function
def good_order(s):
    s += "Code:\n" + partial_tool("code", tool="python", max_tokens=8)
    s += "Output:\n" + tool_result("code")
    s += sgl.gen("answer", max_tokens=4)


def test_a_program_in_order_passes_the_check():
    backend = sgl.RuntimeEndpoint.__new__(sgl.RuntimeEndpoint)  # an SGLang server's, unstarted
    backend.chat_template = FakeBackend().get_chat_template()
    check_program(good_order, backend, (), {})


def test_a_partial_tool_on_a_backend_that_is_no_server_fails_before_any_request(fake):
    with pytest.raises(BackendError, match=r"backend=sgl.RuntimeEndpoint\(url\)") as e:
        good_order.run(backend=fake)
    assert isinstance(e.value, ConveyorError) and isinstance(e.value, TypeError)
    assert fake.requests == []


seen: list[str] = []


@sgl.function
def stock(s, word):
    seen.append(word)
    s += "Say " + word + ": " + sgl.gen("a", max_tokens=2)


def test_a_program_without_the_primitives_runs_as_stock(fake):
    seen.clear()
    state = stock.run("hi", backend=fake)
    assert state["a"] == "yes" and seen == ["hi"]  # not traced: its body ran once
    assert fake.requests == ["generate"]


@sgl.function
def runs_another(s):
    stock("nested")  # a program of its own, on the default backend
    s += tool_result("x")


def test_a_nested_program_ends_the_trace_without_running(fake, monkeypatch):
    monkeypatch.setattr(global_config, "default_backend", fake)
    seen.clear()
    state = runs_another.run(backend=fake)
    assert seen == ["nested"]  # once, by the real run: the trace stopped before it
    assert isinstance(state.error(), ProgramError)


def test_user_mistakes_are_conveyor_errors_that_say_what_to_change():
    with pytest.raises(UnknownToolError, match="register yours with register_tool") as e:
        partial_tool("x", tool="no_such_tool")
    assert isinstance(e.value, ValueError)
    with pytest.raises(ToolConfigError, match=r"unknown option\(s\) \['bogus'\]; known") as e:
        partial_tool("x", tool="python", config={"bogus": 1})
    assert isinstance(e.value, ConveyorError) and isinstance(e.value, ValueError)
    with pytest.raises(ProgramError, match=r"takes sgl.gen's: .*max_tokens") as e:
        partial_tool("x", tool="python", max_tokenz=3)
    assert isinstance(e.value, TypeError)
    with pytest.raises(ProgramError, match="does not take 'choices'"):
        partial_tool("x", tool="python", choices=["a"])
    with pytest.raises(ProgramError, match="mode must be None, 'client' or 'server'"):
        partial_tool("x", tool="python", mode="local")
    with pytest.raises(ProgramError, match="timeout must be positive"):
        tool_result("x", timeout=0)
    with pytest.raises(ToolConfigError, match="argument='code'"):
        ToolSpec("python")
    with pytest.raises(UnknownToolError):
        ToolSpec("no_such_tool")
    with pytest.raises(ToolError, match="non-empty string"):
        register_tool("", "conveyor_sgl.tools.python:PythonTool")
    with pytest.raises(ToolError, match="must look like 'module:Class'"):
        register_tool("mine", "no_colon")
    with pytest.raises(ToolError, match="is not a subclass of conveyor_sgl Tool") as e:
        ToolSpec("collections:OrderedDict")
    assert isinstance(e.value, TypeError)
    with pytest.raises(ToolCallError, match="give run_tool_calls a ToolSpec for 'lookup'"):
        _ = ToolCall(index=0, id="call_0", name="lookup").content


def test_every_exported_error_is_a_conveyor_error():
    errors = [getattr(conveyor_sgl, n) for n in conveyor_sgl.__all__ if n.endswith("Error")]
    assert {ProgramError, BackendError, ToolError, ToolCallError} <= set(errors)
    assert all(issubclass(error, ConveyorError) for error in errors)
