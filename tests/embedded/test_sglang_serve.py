"""Server mode on a server started with SGLang's own CLI, `sglang serve`.

Two routes turn it on: the documented environment variables (CONVEYOR_SGL_TOOL_PARTIAL_EXECUTION=1,
the policy as JSON in CONVEYOR_SGL_TOOL_POLICY) and the flags themselves, which the plugin
adds to SGLang's parser. For those two, the test gives SGLang the CPU flags and environment
our launcher would add; our serve backend (`sglang serve --model-type conveyor`) adds them
itself, so it is started with nothing but a model path and the shell's environment.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import requests
import sglang as sgl

from conveyor_sgl import partial_tool, tool_result
from conveyor_sgl.runtime.embedded import launcher, serve_backend
from conveyor_sgl.runtime.embedded.cpu_kernels import SHIM_DIR
from conveyor_sgl.runtime.embedded.default_model import ensure_default_model
from conveyor_sgl.runtime.embedded.server_process import EmbeddedServer
from conveyor_sgl.runtime.server import cli_flags
from conveyor_sgl.runtime.server.plugin import ENABLE_ENV
from conveyor_sgl.runtime.server.policy import POLICY_ENV, ServerPolicy
from conveyor_sgl.runtime.server.protocol import SERVER_TIME_KEY
from programs.code_solver import forced

SGLANG_CLI = str(Path(sys.executable).with_name("sglang"))


# What a shell of this host has without anything this project sets (the serve backend must
# add all of it itself).
SETUP_ENV = (
    "PYTHONPATH",
    "SGLANG_USE_CPU_ENGINE",
    "SGLANG_CACHE_DIR",
    ENABLE_ENV,
    POLICY_ENV,
    serve_backend.SETUP_DONE_ENV,
)


class SglangServe(EmbeddedServer):
    """`sglang serve ...` in its own process group, ended as one (see EmbeddedServer).

    ``env=None``: the test process's environment without anything of `SETUP_ENV`;
    otherwise the test's additions, as for EmbeddedServer."""

    def __init__(self, *args, env=None, **kwargs) -> None:
        super().__init__(*args, env=env, **kwargs)
        self.bare = env is None

    def command(self) -> list[str]:
        args = ["--port", str(self.port), "--host", self.host, *self.extra_args]
        return [SGLANG_CLI, "serve", *args]

    def _child_env(self) -> dict[str, str]:
        if not self.bare:
            return super()._child_env()
        env = {k: v for k, v in os.environ.items() if k not in SETUP_ENV}
        return {**env, "PYTHONUNBUFFERED": "1"}


def _sglang_parser() -> argparse.ArgumentParser:
    """SGLang's server parser as `sglang serve` builds it once our plugin's hooks are in."""
    from sglang.srt.server_args import ServerArgs

    parser = argparse.ArgumentParser(prog="sglang serve")
    ServerArgs.add_cli_args(parser)
    cli_flags._after_add_cli_args(None, parser)
    return parser


def test_the_flags_parse_in_sglangs_parser_and_become_the_environment():
    argv = ["--model-path", "/m", "--tool-partial-execution", "--tool-allow", "python,line"]
    args = _sglang_parser().parse_args(argv)
    environ: dict[str, str] = {}
    assert cli_flags.apply_parsed(args, environ) is True  # the plugin activates on this
    assert environ[ENABLE_ENV] == "1"
    assert ServerPolicy.from_json(environ[POLICY_ENV]).allowed_tools() == ("python", "line")


def test_without_the_flag_the_environment_decides():
    args = _sglang_parser().parse_args(["--model-path", "/m"])
    environ: dict[str, str] = {}
    assert cli_flags.apply_parsed(args, environ) is False
    assert environ == {}
    environ = {ENABLE_ENV: "1", POLICY_ENV: "{}"}
    assert cli_flags.apply_parsed(args, environ) is True
    assert environ == {ENABLE_ENV: "1", POLICY_ENV: "{}"}


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
    from concurrent.futures import ThreadPoolExecutor

    def help_of(args: tuple[str, ...]) -> str:
        done = subprocess.run(
            [SGLANG_CLI, "serve", *args, "--help"], capture_output=True, text=True, timeout=120
        )
        return done.stdout + done.stderr

    # Both at once: each is seconds of imports on one core.
    with ThreadPoolExecutor(2) as pool:
        stock, ours = pool.map(help_of, [(), ("--model-type", "conveyor")])
    assert "conveyor" in stock.split("--model-type", 1)[1].split("\n", 1)[0]
    assert "--tool-partial-execution" in ours and "--tool-allow-import-targets" in ours
    assert "--tokenizer-path" in ours  # SGLang's own flags too


def dry_run_of(run, argv: list[str], capsys) -> dict:
    run(argv)
    return json.loads(capsys.readouterr().out)


def test_the_backend_adds_what_the_launcher_adds_and_its_dry_run_prints_it(capsys, monkeypatch):
    from sglang.cli.serve_backends import ServeRequest

    monkeypatch.setattr(launcher, "has_gpu", lambda: False)
    for name in SETUP_ENV:
        monkeypatch.delenv(name, raising=False)
    argv = ["--model-path", "/m", "--stream-interval", "2", "--dry-run"]
    ours = dry_run_of(
        lambda a: serve_backend.run(ServeRequest(argv=tuple(a), model_path="/m")), argv, capsys
    )
    theirs = dry_run_of(launcher.main, ["--tool-partial-execution", *argv], capsys)
    assert ours["cpu"] is theirs["cpu"] is True
    assert ours["argv"][:4] == argv[:4] and "--dry-run" not in ours["argv"]
    # The same SGLang flags, and our flag to SGLang (the launcher turns it into the env).
    assert set(ours["argv"]) == set(theirs["argv"]) | {"--tool-partial-execution"}
    assert {"--device", "cpu", "--attention-backend", "torch_native"} <= set(ours["argv"])
    # The same environment, less server mode's (from the flag, in SGLang's parser, for ours).
    assert ours["env"] == {
        k: v for k, v in theirs["env"].items() if k not in (ENABLE_ENV, POLICY_ENV)
    }
    assert ours["env"]["SGLANG_USE_CPU_ENGINE"] == "1"
    assert ours["env"]["PYTHONPATH"].split(os.pathsep)[0] == str(SHIM_DIR)


def test_without_that_environment_the_backend_starts_sglang_again_with_it(monkeypatch):
    from sglang.cli.serve_backends import ServeRequest

    monkeypatch.setattr(launcher, "has_gpu", lambda: False)
    for name in SETUP_ENV:
        monkeypatch.delenv(name, raising=False)
    execs: list[tuple] = []

    def execve(path, args, env):
        execs.append((path, args, env))
        raise SystemExit(0)  # as exec, never returns

    monkeypatch.setattr(os, "execve", execve)
    with pytest.raises(SystemExit):
        serve_backend.run(ServeRequest(argv=("--model-path", "/m"), model_path="/m"))
    [(path, args, env)] = execs
    assert path == sys.executable
    plan, added = serve_backend.launch_plan(["--model-path", "/m"], has_gpu=False)
    assert args[args.index("serve") :] == ["serve", "--model-type", "conveyor", *plan.argv]
    assert added.items() <= env.items() and env[serve_backend.SETUP_DONE_ENV] == "1"
    # Once started again with it all, a missing piece is an error, never another exec.
    monkeypatch.setenv(serve_backend.SETUP_DONE_ENV, "1")
    with pytest.raises(RuntimeError, match="still missing"):
        serve_backend.run(ServeRequest(argv=("--model-path", "/m"), model_path="/m"))
    assert len(execs) == 1


@pytest.fixture(scope="module", params=["flag", "backend"])
def served(request):
    """`sglang serve` with server mode from the flag, or from our serve backend
    (`--model-type conveyor`: nothing but the model, the port and a small KV pool, in the
    shell's environment less anything this project sets). The third route, the environment
    variable, is how our launcher turns it on: the session's shared server (conftest) and
    `start_runtime` (test_sgl_runtime) run on it."""
    pool = ["--max-total-tokens", "4096", "--max-running-requests", "8"]
    if request.param == "backend":
        argv = ["--model-type", "conveyor", "--model-path", str(ensure_default_model()), *pool]
        argv += ["--tool-allow", "python,line"]
        with SglangServe(extra_args=argv, startup_timeout_s=240) as server:
            if not launcher.has_gpu():  # it said what it added
                log = server.log_path.read_text(encoding="utf-8", errors="replace")
                assert "serving on SGLang's CPU engine; starting SGLang again" in log
            yield request.param, server
        return
    plan = launcher.plan_launch(pool, has_gpu=launcher.has_gpu(), environ=os.environ)
    env = launcher.launch_environment(plan, os.environ)
    argv = list(plan.argv)
    env[ENABLE_ENV] = "0"  # whatever this shell has: only the flag may turn it on
    argv += ["--tool-allow", "python,line", "--tool-partial-execution"]
    with SglangServe(extra_args=argv, env=env, startup_timeout_s=150) as server:
        yield request.param, server


@pytest.mark.server
def test_sglang_serve_has_the_conveyor_routes(served):
    _, server = served
    res = requests.get(server.url + "/conveyor/info", timeout=10)
    assert res.status_code == 200, res.text
    info = res.json()
    assert info["tool_partial_execution"] is True
    assert info["tools"] == ["python", "line"]
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
