"""Server mode on a server started with SGLang's own CLI, `sglang serve`.

Two routes turn it on: the documented environment variables (CONVEYOR_SGL_TOOL_PARTIAL_EXECUTION=1,
the policy as JSON in CONVEYOR_SGL_TOOL_POLICY) and the flags themselves, which the plugin
adds to SGLang's parser. The CPU flags and environment are the ones our launcher would add.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import pytest
import requests
import sglang as sgl

from conveyor_sgl import partial_tool, tool_result
from conveyor_sgl.runtime.embedded import launcher
from conveyor_sgl.runtime.embedded.cpu_kernels import build_pythonpath
from conveyor_sgl.runtime.embedded.server_process import EmbeddedServer
from conveyor_sgl.runtime.server import cli_flags
from conveyor_sgl.runtime.server.plugin import ENABLE_ENV
from conveyor_sgl.runtime.server.policy import POLICY_ENV, ServerPolicy
from conveyor_sgl.runtime.server.protocol import SERVER_TIME_KEY
from programs.code_solver import forced

SGLANG_CLI = str(Path(sys.executable).with_name("sglang"))


class SglangServe(EmbeddedServer):
    """`sglang serve ...` in its own process group, ended as one (see EmbeddedServer)."""

    def command(self) -> list[str]:
        args = ["--port", str(self.port), "--host", self.host, *self.extra_args]
        return [SGLANG_CLI, "serve", *args]


def _sglang_parser() -> argparse.ArgumentParser:
    """SGLang's server parser as `sglang serve` builds it once our plugin's hooks are in."""
    from sglang.srt.server_args import ServerArgs

    parser = argparse.ArgumentParser(prog="sglang serve")
    ServerArgs.add_cli_args(parser)
    cli_flags._after_add_cli_args(None, parser)
    return parser


def test_the_flags_parse_in_sglangs_parser_and_become_the_environment(monkeypatch):
    activated: list[bool] = []
    monkeypatch.setattr("conveyor_sgl.runtime.server.plugin.activate", lambda: activated.append(1))
    argv = ["--model-path", "/m", "--tool-partial-execution", "--tool-allow", "python,line"]
    args = _sglang_parser().parse_args(argv)
    environ: dict[str, str] = {}
    cli_flags.apply_parsed(args, environ)
    assert environ[ENABLE_ENV] == "1" and activated == [1]
    assert ServerPolicy.from_json(environ[POLICY_ENV]).allowed_tools() == ("python", "line")


def test_without_the_flag_the_environment_decides(monkeypatch):
    activated: list[bool] = []
    monkeypatch.setattr("conveyor_sgl.runtime.server.plugin.activate", lambda: activated.append(1))
    args = _sglang_parser().parse_args(["--model-path", "/m"])
    environ: dict[str, str] = {}
    cli_flags.apply_parsed(args, environ)
    assert environ == {} and activated == []
    environ = {ENABLE_ENV: "1", POLICY_ENV: "{}"}
    cli_flags.apply_parsed(args, environ)
    assert environ == {ENABLE_ENV: "1", POLICY_ENV: "{}"} and activated == [1]


def test_a_bad_policy_flag_stops_sglang_serve(capsys):
    args = _sglang_parser().parse_args(["--model-path", "/m", "--tool-files-root", "/nonexistent"])
    with pytest.raises(SystemExit) as exit_:
        cli_flags.apply_parsed(args, {})
    assert exit_.value.code == 2
    assert "--tool-files-root" in capsys.readouterr().err


def test_launcher_help_lists_our_flags_first_then_sglangs(capsys):
    launcher.main(["--help"])
    out = capsys.readouterr().out
    ours = out.index("--tool-partial-execution")
    assert ours < out.index("--tool-allow-import-targets") < out.index("--cpus")
    sglang_part = out.index("SGLang server flags (passed through")
    assert out.index("--cpus") < sglang_part < out.index("--tokenizer-path")
    assert "sglang serve" not in out  # SGLang's usage line would name the wrong command


@sgl.function
def echo(s, text, mode=None):
    s += "Lines:\n" + partial_tool("lines", tool="python", mode=mode, max_tokens=64, regex=text)
    s += "\nResult:\n" + tool_result("lines", timeout=60)


def test_sglang_serve_help_names_our_backend_whose_help_has_our_flags():
    import subprocess

    def help_of(*args: str) -> str:
        done = subprocess.run(
            [SGLANG_CLI, "serve", *args, "--help"], capture_output=True, text=True, timeout=120
        )
        return done.stdout + done.stderr

    assert "conveyor" in help_of().split("--model-type", 1)[1].split("\n", 1)[0]
    ours = help_of("--model-type", "conveyor")
    assert "--tool-partial-execution" in ours and "--tool-allow-import-targets" in ours
    assert "--tokenizer-path" in ours  # SGLang's own flags too


@pytest.fixture(scope="module", params=["env", "flag", "backend"])
def served(request):
    """`sglang serve` with server mode from the environment, from the flag, or from our
    serve backend (`--model-type conveyor`)."""
    plan = launcher.plan_launch(
        ["--max-total-tokens", "4096", "--max-running-requests", "8"],
        has_gpu=launcher.has_gpu(),
        environ=os.environ,
    )
    env = {**plan.env, "PYTHONPATH": build_pythonpath(os.environ.get("PYTHONPATH", ""))}
    argv = list(plan.argv)
    if request.param == "env":
        env |= {ENABLE_ENV: "1", POLICY_ENV: ServerPolicy(tools=("python",)).to_json()}
    else:
        env[ENABLE_ENV] = "0"  # whatever this shell has: only the flag may turn it on
        argv += ["--tool-allow", "python,line"]
        if request.param == "flag":
            argv.append("--tool-partial-execution")
        else:
            argv += ["--model-type", "conveyor"]
    with SglangServe(extra_args=argv, env=env, startup_timeout_s=150) as server:
        yield request.param, server


@pytest.mark.server
def test_sglang_serve_has_the_conveyor_routes(served):
    route, server = served
    res = requests.get(server.url + "/conveyor/info", timeout=10)
    assert res.status_code == 200, res.text
    info = res.json()
    assert info["tool_partial_execution"] is True
    assert info["tools"] == (["python"] if route == "env" else ["python", "line"])
    body = {"text": "hi", "sampling_params": {"max_new_tokens": 2}}
    meta = requests.post(server.url + "/generate", json=body, timeout=60).json()["meta_info"]
    assert SERVER_TIME_KEY in meta  # the output stream is stamped too


@pytest.mark.server
def test_a_program_runs_in_server_mode_on_sglang_serve(served):
    _, server = served
    backend = sgl.RuntimeEndpoint(server.url)
    for mode in ("server", None, "client"):
        state = echo.run(text=forced("print(6 * 7)\n"), mode=mode, backend=backend)
        assert state.error() is None, state.error()
        tool = state.get_meta_info("lines")["tool"]
        assert (tool["mode"], tool["output"]) == (mode or "server", "42\n")
