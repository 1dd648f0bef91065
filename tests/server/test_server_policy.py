"""The operator's policy for server mode: loading it (YAML, flags, env) and each rule's
refusal, which comes before anything is imported, opened or fetched."""

from __future__ import annotations

import asyncio
import json
import socket
import sys

import msgspec
import pytest

from conveyor_sgl.runtime.embedded.launcher import build_parser, policy_env
from conveyor_sgl.runtime.sandbox.layers import DISABLE_ENV
from conveyor_sgl.runtime.server.admission import PolicyError, admit, tightened
from conveyor_sgl.runtime.server.policy import (
    POLICY_ENV,
    PolicyConfigError,
    ServerPolicy,
    load_policy,
    url_matches,
)
from conveyor_sgl.runtime.server.routes import ServerMode
from conveyor_sgl.runtime.workers.pool import WorkerPool
from conveyor_sgl.tools.limits import limits_for
from conveyor_sgl.tools.registry import builtin_names

CLOSED = ServerPolicy()


def refusal(policy: ServerPolicy, tool: str, config=None, limits=None) -> PolicyError:
    with pytest.raises(PolicyError) as info:
        admit(policy, tool, config or {}, limits)
    return info.value


# --- loading ------------------------------------------------------------------------------


def test_the_default_policy_is_closed():
    assert CLOSED.describe() == {
        "tools": builtin_names(),
        "import_targets": False,
        "callables": False,
        "files_root": None,
        "urls": [],
        "unconfined": False,
        "max_session_s": 300.0,
        "max_sessions_per_client": 4,
        "max_body_bytes": 1 << 20,
        "mcp_servers": {},  # none but those the operator names (--tool-mcp-server)
    }


def test_yaml_then_flags(tmp_path):
    root = tmp_path / "files"
    root.mkdir()
    path = tmp_path / "policy.yaml"
    path.write_text(
        f"tools: [sql, search]\nfiles_root: {root}\nallow_urls: [http://127.0.0.1:9000/api]\n"
    )
    policy = load_policy(path)
    assert (policy.tools, policy.files_root) == (("sql", "search"), str(root.resolve()))
    flagged = load_policy(
        path, tools=["python"], allowed_urls=["https://x.org"], allow_callables=True
    )
    assert flagged.tools == ("python",) and flagged.allow_callables
    assert flagged.allowed_urls == ("http://127.0.0.1:9000/api", "https://x.org")
    assert ServerPolicy.from_json(flagged.to_json()) == flagged
    assert ServerPolicy.from_env({POLICY_ENV: flagged.to_json()}) == flagged
    assert ServerPolicy.from_env({}) == CLOSED


def test_the_caps_from_yaml_then_flags(tmp_path):
    path = tmp_path / "policy.yaml"
    path.write_text("max_session_s: 60\nmax_sessions_per_client: 2\nmax_body_bytes: 512 KiB\n")
    policy = load_policy(path)
    assert (policy.max_session_s, policy.max_sessions_per_client) == (60, 2)
    assert policy.max_body_bytes == 512 << 10
    flagged = load_policy(path, max_session_s=30.5, max_body_bytes="4MiB")
    assert (flagged.max_session_s, flagged.max_sessions_per_client) == (30.5, 2)
    assert flagged.max_body_bytes == 4 << 20
    assert ServerPolicy.from_json(flagged.to_json()) == flagged
    described = flagged.describe()
    assert (described["max_session_s"], described["max_body_bytes"]) == (30.5, 4 << 20)


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        ({"max_session_s": 0}, r"max_session_s \(--tool-max-session-s\) must be a positive"),
        ({"max_session_s": float("inf")}, "must be a positive number of seconds"),
        ({"max_sessions_per_client": 0}, r"\(--tool-max-sessions-per-client\) must be a whole"),
        ({"max_sessions_per_client": 2.5}, "must be a whole number >= 1, got 2.5"),
        ({"max_body_bytes": "lots"}, "--tool-max-body-bytes: max_body_bytes: not a size: 'lots'"),
        ({"max_body_bytes": 0}, r"max_body_bytes \(--tool-max-body-bytes\) must be a whole"),
    ],
)
def test_a_bad_cap_names_its_flag(flags, message):
    with pytest.raises(PolicyConfigError, match=message):
        load_policy(None, **flags)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("max_session_s: forever\n", "max_session_s .* must be a positive number"),
        ("max_sessions_per_client: true\n", "max_sessions_per_client .* must be a whole"),
        ("max_body_bytes: 1 parsec\n", "max_body_bytes: not a size"),
        ("tools: python\n", "tools must be a list"),
        ("allow_everything: true\n", "expected a mapping with the keys"),
        ("files_root: /no/such/dir\n", "is not a directory"),
        ("allow_urls: [ftp://x]\n", r"must be http\(s\)://host"),
        ("allow_callables: yes please\n", "allow_callables must be true or false"),
    ],
)
def test_a_bad_policy_file_names_its_problem(tmp_path, text, message):
    path = tmp_path / "policy.yaml"
    path.write_text(text)
    with pytest.raises(PolicyConfigError, match=message):
        load_policy(path)


def test_launcher_flags_become_the_env_the_plugin_reads(tmp_path):
    parser = build_parser()
    argv = ["--tool-partial-execution", "--tool-allow", "python,sql", "--tool-allow", "search"]
    argv += ["--tool-files-root", str(tmp_path), "--tool-allow-url", "http://127.0.0.1:1/"]
    argv += ["--tool-allow-unconfined", "--model-path", "m"]
    ours, rest = parser.parse_known_args(argv)
    assert rest == ["--model-path", "m"]
    policy = ServerPolicy.from_json(policy_env(parser, ours)[POLICY_ENV])
    assert policy.tools == ("python", "sql", "search") and policy.allow_unconfined
    assert (policy.files_root, policy.allowed_urls) == (
        str(tmp_path.resolve()),
        ("http://127.0.0.1:1/",),
    )
    for flag in ("--tool-policy", "--tool-allow-import-targets", "--tool-allow-callables"):
        assert flag in parser.format_help()
    plain, _ = parser.parse_known_args([])
    assert policy_env(parser, plain) == {}  # without server mode: nothing to hand on


def test_the_cap_flags_parse_and_show_their_defaults():
    parser = build_parser()
    argv = ["--tool-partial-execution", "--tool-max-session-s", "90"]
    argv += ["--tool-max-sessions-per-client", "8", "--tool-max-body-bytes", "256KiB"]
    ours, _ = parser.parse_known_args(argv)
    policy = ServerPolicy.from_json(policy_env(parser, ours)[POLICY_ENV])
    assert (policy.max_session_s, policy.max_sessions_per_client) == (90, 8)
    assert policy.max_body_bytes == 256 << 10
    defaults, _ = parser.parse_known_args(["--tool-partial-execution"])
    assert ServerPolicy.from_json(policy_env(parser, defaults)[POLICY_ENV]) == CLOSED
    text = " ".join(parser.format_help().split())
    for words in (
        "--tool-max-session-s SECONDS",
        "(default: 300)",
        "--tool-max-sessions-per-client N",
        "(default: 4)",
        "--tool-max-body-bytes SIZE",
        "(default: 1MiB)",
    ):
        assert words in text, words
    with pytest.raises(SystemExit):  # argparse: not a number
        parser.parse_known_args(["--tool-max-sessions-per-client", "many"])


def test_url_prefixes_match_whole_hosts_ports_and_path_segments():
    prefix = "http://127.0.0.1:8000/api"
    assert url_matches("http://127.0.0.1:8000/api/search?q=1", prefix)
    assert url_matches("http://127.0.0.1:8000/api", prefix)
    for url in (
        "http://127.0.0.1:8001/api",
        "http://127.0.0.1:8000/apis",
        "http://127.0.0.1:8000@evil.org/api",
        "https://127.0.0.1:8000/api",
        "http://127.0.0.1:80000/api",
    ):
        assert not url_matches(url, prefix), url


# --- each rule ----------------------------------------------------------------------------


@pytest.fixture
def probe_module(tmp_path, monkeypatch):
    """A module whose import would leave a mark (a file) and show in sys.modules."""
    mark = tmp_path / "imported.mark"
    (tmp_path / "policy_probe_mod.py").write_text(
        f"open({str(mark)!r}, 'w').close()\n"
        "from conveyor_sgl.tools.base import Tool\n"
        "class Probe(Tool):\n    pass\n"
        "def run(**kw):\n    return 'ran'\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    yield mark
    assert "policy_probe_mod" not in sys.modules and not mark.exists()


def test_a_tool_outside_the_allow_list_is_refused():
    error = refusal(ServerPolicy(tools=("sql",)), "python")
    assert error.status == 403
    assert str(error).startswith("policy: tool 'python' is not allowed (--tool-allow)")
    assert refusal(CLOSED, "no_such_tool").status == 400


def test_an_import_target_is_refused_before_it_is_imported(probe_module):
    error = refusal(CLOSED, "policy_probe_mod:Probe")
    assert error.status == 403 and "(--tool-allow-import-targets)" in str(error)
    # The target of a registered built-in is that tool, not an import.
    assert admit(CLOSED, "conveyor_sgl.tools.sql:SqlTool", {}, None).checked.tool.name == "sql"


def test_a_callable_in_a_config_is_refused_before_it_is_imported(probe_module):
    config = {"schema": {"type": "object"}, "function": "policy_probe_mod:run"}
    error = refusal(CLOSED, "validation", config)
    assert error.status == 403
    assert "callable 'policy_probe_mod:run'" in str(error)
    assert "(--tool-allow-callables)" in str(error)


def test_sql_files_only_inside_the_files_root(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    (root / "escape").symlink_to(tmp_path)
    outside = tmp_path / "outside.db"
    error = refusal(CLOSED, "sql", {"database": str(outside)})
    assert "no files root is set, only ':memory:' (--tool-files-root)" in str(error)
    policy = ServerPolicy(files_root=str(root.resolve()))
    for path in (str(outside), "../outside.db", "escape/x.db"):
        assert "outside the files root (--tool-files-root)" in str(
            refusal(policy, "sql", {"database": path})
        )
    assert not outside.exists() and not (tmp_path / "x.db").exists()
    inside = admit(policy, "sql", {"database": "ok.db"}, None)
    assert inside.checked.config == {"database": "ok.db", "files_root": str(root.resolve())}
    assert admit(CLOSED, "sql", {}, None).checked.config == {"files_root": ""}  # memory only
    error = refusal(policy, "sql", {"files_root": "/"})
    assert "option 'files_root' of tool 'sql' is set by the server" in str(error)


def test_the_python_tools_abort_on_error_is_a_request_option():
    # It only cuts the request's own decoding short: no limit, nothing the server owns.
    unconfined_ok = ServerPolicy(allow_unconfined=True)  # admission, whatever this kernel has
    config = {"abort_on_error": True, "max_output_bytes": 1000}
    assert admit(unconfined_ok, "python", config, None).checked.config == config
    error = refusal(unconfined_ok, "python", {"abort_on_error": "yes"})
    assert error.status == 400 and "abort_on_error must be true or false" in str(error)


def test_urls_only_under_an_allowed_prefix_also_nested():
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        listener.settimeout(0.2)
        url = f"http://127.0.0.1:{listener.getsockname()[1]}/"
        error = refusal(CLOSED, "search", {"service_url": url})
        assert f"policy: URL {url!r} is not allowed (--tool-allow-url)" in str(error)
        nested = refusal(CLOSED, "planner", {"search": {"service_url": url}})
        assert "(--tool-allow-url)" in str(nested)
        with pytest.raises(TimeoutError):
            listener.accept()  # nobody connected
    allowed = ServerPolicy(allowed_urls=(url,))
    assert admit(allowed, "planner", {"search": {"service_url": url + "x"}}, None)


def test_limits_may_only_tighten():
    base = limits_for("python")
    tighter = tightened(base, {"cpu_s": 5, "memory_bytes": "256 MiB", "network": False})
    assert (tighter.cpu_s, tighter.memory_bytes, tighter.confine) == (5, 256 << 20, True)
    for looser, words in (
        ({"cpu_s": 31}, "cpu_s 31 is above the tool's 30.0"),
        ({"network": True}, "network true is looser than the tool's false"),
        ({"confine": False}, "confine false is looser than the tool's true"),
        ({"max_processes": 4}, "max_processes 4 is above the tool's 0"),
    ):
        error = refusal(CLOSED, "python", {}, looser)
        assert error.status == 403 and f"policy: limits may only tighten: {words}" in str(error)
    assert refusal(CLOSED, "python", {}, {"wall_s": 1}).status == 400
    # A tool without a bound (max_processes null) may be given one.
    assert tightened(limits_for("sql"), {"max_processes": 0}).max_processes == 0


def test_every_size_limit_tightens_as_a_number():
    # Whatever numeric limits the tools have (disk_bytes among them where it exists), a
    # request may lower each one, sizes written as in limits.yaml.
    base = limits_for("python")
    for key, value in msgspec.structs.asdict(base).items():
        if isinstance(value, bool):
            continue
        if key.endswith("_bytes"):
            assert getattr(tightened(base, {key: "1 MiB"}), key) == 1 << 20
        if value is not None:
            error = refusal(CLOSED, "python", {}, {key: value * 2 + 1})
            assert error.status == 403 and f"limits may only tighten: {key}" in str(error)
        assert refusal(CLOSED, "python", {}, {key: "a lot"}).status == 400


def test_untrusted_code_needs_the_landlock_layer(monkeypatch):
    monkeypatch.setenv(DISABLE_ENV, "landlock")
    error = refusal(CLOSED, "python")
    assert error.status == 503
    assert "lacks the landlock layer" in str(error) and "--tool-allow-unconfined" in str(error)
    assert (
        admit(ServerPolicy(allow_unconfined=True), "python", {}, None).checked.tool.name == "python"
    )
    assert admit(CLOSED, "calculator", {}, None)  # trusted tools need no kernel layer


# --- the route's answers ------------------------------------------------------------------


class _Request:
    def __init__(self, body: dict) -> None:
        self._body = body

    async def body(self) -> bytes:
        return json.dumps(self._body).encode()


def _answer(mode: ServerMode, body: dict) -> tuple[int, str]:
    response = asyncio.run(mode.partial_tool(_Request(body)))
    return response.status_code, json.loads(response.body)["error"]["message"]


def test_a_busy_pool_is_503_and_a_refusal_its_4xx():
    pool = WorkerPool(size=0, max_workers=1)
    mode = ServerMode(pool=pool, policy=ServerPolicy(tools=("calculator",)), acquire_timeout_s=0.3)
    try:
        body = {"tool": "calculator", "generate": {"text": "x"}}
        held = pool.acquire(10)
        try:
            status, message = _answer(mode, body)
        finally:
            held.close()
        assert status == 503 and "stayed busy" in message
        status, message = _answer(mode, {**body, "tool": "python"})
        assert status == 403 and "(--tool-allow)" in message
        status, message = _answer(mode, {**body, "limits": {"network": "yes"}})
        assert status == 400 and "network must be true or false" in message
    finally:
        mode.shutdown()
