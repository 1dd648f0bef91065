"""The operator's policy and --api-key on a real server launched with --tool-partial-execution:
each rule refuses with a 4xx naming it, before anything is imported, opened or fetched."""

from __future__ import annotations

import socket

import pytest
import requests
import sglang as sgl
from conftest import POLICED_AUTH, POLICED_KEY, POLICED_TOOLS
from sse_events import sse_events, tool_result_of

from conveyor_sgl import partial_tool, tool_result
from conveyor_sgl.runtime.server.protocol import CARRIER_PATH, PARTIAL_TOOL_PATH, carried
from programs.code_solver import forced

pytestmark = pytest.mark.server

KEY, AUTH, ALLOWED = POLICED_KEY, POLICED_AUTH, POLICED_TOOLS


@pytest.fixture(scope="module")
def policed(policed_server):
    """The session's policed server (tests/conftest.py): (server, base, root, mark)."""
    p = policed_server
    return p.server, p.base, p.root, p.mark


def _post(url: str, body: dict, headers: dict | None = AUTH) -> requests.Response:
    return requests.post(url + "/conveyor/partial_tool", json=body, headers=headers, timeout=30)


def _body(tool: str, config: dict | None = None, **extra) -> dict:
    generate = {"text": "x", "sampling_params": {"max_new_tokens": 4}}
    return {"tool": tool, "config": config or {}, "generate": generate, **extra}


def test_the_conveyor_routes_need_the_api_key(policed):
    server, *_ = policed
    info = server.url + "/conveyor/info"
    assert requests.get(info, timeout=10).status_code == 401
    bad = {"Authorization": "Bearer wrong"}
    assert requests.get(info, headers=bad, timeout=10).status_code == 401
    assert _post(server.url, _body("python"), headers=None).status_code == 401
    answer = requests.get(info, headers=AUTH, timeout=10)
    assert answer.status_code == 200
    assert answer.json()["policy"]["tools"] == ALLOWED.split(",")
    assert answer.json()["tools"] == ALLOWED.split(",")


@sgl.function
def lines(s, tool, text, config=None):
    s += "Lines:\n" + partial_tool(
        "lines", tool=tool, config=config, mode="server", max_tokens=128, regex=forced(text)
    )
    s += "\nResult:\n" + tool_result("lines", timeout=60)


def test_the_frontend_sends_the_key_and_sql_stays_in_the_files_root(policed):
    server, base, root, _ = policed
    runtime = sgl.RuntimeEndpoint(server.url, api_key=KEY)
    outside = base / "outside.db"
    text = f"CREATE TABLE t(x);\nATTACH DATABASE '{outside}' AS o;\n"
    state = lines.run(backend=runtime, tool="sql", text=text, config={"database": "in.db"})
    assert state.error() is None, state.error()
    tool = state.get_meta_info("lines")["tool"]
    assert (tool["mode"], tool["status"]) == ("server", "error")
    assert tool["error"].startswith("statement 2: SqlFileError: "), tool["error"]
    assert "is outside files_root" in tool["error"]
    assert (root / "in.db").exists() and not outside.exists()


def test_each_rule_refuses_with_a_4xx_naming_it(policed):
    server, base, _, mark = policed
    outside = base / "refused.db"
    cases = [
        (_body("calculator"), "policy: tool 'calculator' is not allowed (--tool-allow)"),
        (_body("policy_probe_mod:Probe"), "(--tool-allow-import-targets)"),
        (
            _body("validation", {"schema": {"type": "object"}, "function": "policy_probe_mod:run"}),
            "callables in configs are not allowed (--tool-allow-callables)",
        ),
        (_body("sql", {"database": str(outside)}), "outside the files root (--tool-files-root)"),
        (_body("sql", {"files_root": "/"}), "option 'files_root' of tool 'sql' is set by the"),
        (_body("python", limits={"network": True}), "policy: limits may only tighten: network"),
    ]
    for body, message in cases:
        answer = _post(server.url, body)
        assert answer.status_code == 403, (body, answer.text)
        assert message in answer.json()["error"]["message"]
    assert not mark.exists() and not outside.exists()  # nothing imported, nothing created
    unknown = _post(server.url, _body("no_such_tool"))
    assert unknown.status_code == 400 and "unknown tool 'no_such_tool'" in unknown.text


def test_urls_are_refused_before_anything_is_fetched(policed):
    server, *_ = policed
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        url = f"http://127.0.0.1:{listener.getsockname()[1]}/"
        for body in (
            _body("search", {"service_url": url}),
            _body("planner", {"search": {"service_url": url}}),
        ):
            answer = _post(server.url, body)
            assert answer.status_code == 403
            assert f"URL {url!r} is not allowed (--tool-allow-url)" in answer.text
        listener.settimeout(0.5)
        with pytest.raises(TimeoutError):
            listener.accept()  # no connection ever came


def test_tighter_limits_are_taken(policed):
    server, *_ = policed
    runtime = sgl.RuntimeEndpoint(server.url, api_key=KEY)
    body = _body("python", limits={"cpu_s": 5, "network": False})
    answer = _post(server.url, body)
    assert answer.status_code == 200
    answer.close()
    state = lines.run(backend=runtime, tool="python", text="print(6 * 7)\n")
    tool = state.get_meta_info("lines")["tool"]
    assert (tool["status"], tool["output"]) == ("ok", "42\n")


def _send(url: str, body: dict, via: str) -> requests.Response:
    if via == "direct":
        return _post(url, body)
    outer = carried(PARTIAL_TOOL_PATH, body, "x", "default")
    return requests.post(url + CARRIER_PATH, json=outer, headers=AUTH, timeout=30, stream=True)


@pytest.mark.parametrize("via", ["direct", "carried"])
def test_indirect_routes_are_refused_on_both_routes(policed, via):
    server, base, _, _ = policed
    outside = base / f"computed-{via}.db"
    head, tail = str(outside)[:5], str(outside)[5:]
    secret = base / f"secret-{via}.json"
    secret.write_text('{"type": "string", "title": "hunter2-ref"}')
    schema = {"type": "object", "properties": {"a": {"$ref": secret.as_uri()}}}
    refused = [
        # An ATTACH whose file is an expression, in the setup script.
        (_body("sql", {"setup": f"ATTACH '{head}' || '{tail}' AS o;"}), "plain string literal"),
        (_body("validation", {"schema": schema}), "remote and file references are not allowed"),
        (_body("search", {"top_k": 1000}), "top_k 1000 is above"),
    ]
    for body, message in refused:
        answer = _send(server.url, body, via)
        assert answer.status_code in (400, 403), (body, answer.text)
        assert message in answer.text and "hunter2" not in answer.text
    # The same ATTACH decoded as model output, once the session runs: refused by the tool.
    text = f"ATTACH '{head}' || '{tail}' AS o;\n"
    sampling = {"max_new_tokens": 128, "regex": forced(text), "temperature": 0}
    body = {"tool": "sql", "generate": {"text": "x", "sampling_params": sampling}}
    with _send(server.url, body, via) as answer:
        assert answer.status_code == 200, answer.text
        tool = tool_result_of(sse_events(answer))
    assert tool["status"] == "error" and "plain string literal" in tool["error"], tool
    assert "landlock" in tool["sandbox"] and not outside.exists()
