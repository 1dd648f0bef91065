"""One resolution of a tool: a name, a target and a class of one tool are one identity, with
one parser and one limits; a class that runs untrusted code is confined under any name."""

from __future__ import annotations

import pytest
from resolution_tools import TrustedProbe, UntrustedProbe

from conveyor_sgl import partial_tool
from conveyor_sgl.primitives.server_mode import request_body
from conveyor_sgl.runtime.run_tool import run_tool
from conveyor_sgl.runtime.session import ToolSession
from conveyor_sgl.tools import registry
from conveyor_sgl.tools.limits import limits_for
from conveyor_sgl.tools.python import PythonTool
from conveyor_sgl.tools.registry import check_tool, register_tool, resolve

PYTHON_TARGET = "conveyor_sgl.tools.python:PythonTool"


@pytest.fixture
def restore_registry():
    saved = dict(registry._targets)
    yield
    with registry._lock:
        registry._targets.clear()
        registry._targets.update(saved)


def test_a_name_a_target_and_a_class_resolve_to_one_identity():
    by_name, by_target, by_class = resolve("python"), resolve(PYTHON_TARGET), resolve(PythonTool)
    assert by_name == by_target == by_class
    assert (by_name.name, by_name.target, by_name.cls) == ("python", PYTHON_TARGET, PythonTool)
    assert (by_name.parser, by_name.limits_section, by_name.untrusted_code) == (
        "python",
        "python",
        True,
    )
    assert resolve(by_name) is by_name


def test_limits_follow_the_class_not_the_spelling():
    by_name, by_target = limits_for("python"), limits_for(PYTHON_TARGET)
    assert by_name == by_target == limits_for(resolve(PythonTool))
    assert (by_target.network, by_target.confine, by_target.max_processes) == (False, True, 0)


def test_an_alias_keeps_its_name_and_the_class_limits(restore_registry):
    register_tool("py", PythonTool)
    alias = resolve("py")
    assert (alias.name, alias.limits_section, alias.cls) == ("py", "python", PythonTool)
    assert limits_for("py") == limits_for("python")


def test_untrusted_code_is_confined_registered_or_not(restore_registry):
    target = "resolution_tools:UntrustedProbe"
    unregistered = resolve(target)
    assert (unregistered.name, unregistered.limits_section) == (target, None)
    register_tool("probe", UntrustedProbe)
    for spelling in (target, "probe"):
        limits = limits_for(spelling)
        assert (limits.network, limits.confine, limits.max_processes) == (False, True, 0)
    trusted = limits_for("resolution_tools:TrustedProbe")
    assert (trusted.network, trusted.confine) == (True, False)  # the default section
    # The program's author may still loosen limits explicitly in client mode.
    assert limits_for(target, {"network": True}).network is True


def test_an_untrusted_target_string_really_runs_confined(tmp_path):
    outside = tmp_path / "escaped.txt"
    result = run_tool("resolution_tools:UntrustedProbe", f"{outside}\n", timeout=20)
    assert result.status == "ok", result.error
    assert "refused" in result.output and not outside.exists()
    trusted = run_tool(TrustedProbe, f"{outside}\n", timeout=20)  # a class works as well
    assert f"WROTE {outside}" in trusted.output and outside.exists()


def test_python_by_target_string_is_still_confined(tmp_path):
    outside = tmp_path / "python_escaped.txt"
    code = f"open({str(outside)!r}, 'w').write('x')\n"
    result = run_tool(PYTHON_TARGET, code, timeout=20)
    assert result.status == "error" and "not allowed" in result.output + (result.error or "")
    assert not outside.exists()


def test_the_session_and_the_wire_use_the_registered_name():
    with ToolSession(PYTHON_TARGET) as session:
        assert session.tool == "python" and session.resolved == resolve("python")
    expr = partial_tool("code", tool=PYTHON_TARGET, max_tokens=8)
    assert (expr.tool, expr.resolved) == ("python", resolve("python"))
    body = request_body(expr.resolved.name, True, {}, {"text": "x"})
    assert body["tool"] == "python"
    unregistered = partial_tool("probe", tool=UntrustedProbe, max_tokens=8)
    assert unregistered.resolved.name == "resolution_tools:UntrustedProbe"  # no name: the target


def test_the_wire_names_a_tool_the_server_knows_by_name_else_by_target():
    from conveyor_sgl.primitives.server_mode import wire_tool

    python = resolve("conveyor_sgl.tools.python:PythonTool")
    assert wire_tool(python, {"tools": ["python", "sql"]}) == "python"
    # A name registered only in this program means nothing to the server: send the target.
    register_tool("program_local_echo", "tools_for_tests:EchoTool")
    local = resolve("program_local_echo")
    assert wire_tool(local, {"tools": ["python"]}) == "tools_for_tests:EchoTool"
    assert wire_tool(python, {"tools": ["sql"]}) == "conveyor_sgl.tools.python:PythonTool"


def test_a_config_is_checked_once_in_the_process_that_trusts_it():
    from resolution_tools import CountingTool

    from conveyor_sgl.runtime.server.admission import admit
    from conveyor_sgl.runtime.server.policy import ServerPolicy

    CountingTool.checks = 0
    expr = partial_tool("x", tool=CountingTool, config={"a": 1}, max_tokens=8)
    assert CountingTool.checks == 1  # when the program was built
    with ToolSession(expr.checked) as session:  # the executor's session: no second check
        assert session.resolved == expr.resolved
    assert check_tool(expr.checked) is expr.checked
    assert CountingTool.checks == 1
    # The server's admission checks the request's config (its own trust), and only it.
    policy = ServerPolicy(allow_import_targets=True)
    admitted = admit(policy, "resolution_tools:CountingTool", {"a": 2}, None)
    assert CountingTool.checks == 2 and dict(admitted.checked.config) == {"a": 2}
    with ToolSession(admitted.checked):
        pass
    assert CountingTool.checks == 2
