"""The SGLang plugin adds no server-mode hook unless server mode is on (flag or environment).

Prefix holds (on by default, in both modes) are switched off here: their hooks are tested in
``test_prefix_holds.py``."""

from __future__ import annotations

import json
import multiprocessing
from importlib.metadata import entry_points

import pytest
from sglang.srt.plugins.hook_registry import HookRegistry

from conveyor_sgl.runtime.embedded.launcher import build_parser, main
from conveyor_sgl.runtime.server import cli_flags
from conveyor_sgl.runtime.server import plugin as server_plugin
from conveyor_sgl.runtime.server.prefix_holds import HOLD_S_ENV

OUR_TARGETS = (server_plugin.HTTP_SERVE, server_plugin.OUTPUT_STREAM)
CLI_TARGETS = (cli_flags.ADD_CLI_ARGS, cli_flags.FROM_CLI_ARGS)


@pytest.fixture
def clean_registry():
    """Take out whatever hooks a test registered on our targets (the registry is global)."""
    targets = OUR_TARGETS + CLI_TARGETS
    before = {target: list(HookRegistry._hooks.get(target, [])) for target in targets}
    yield
    for target, hooks in before.items():
        if hooks:
            HookRegistry._hooks[target] = hooks
        else:
            HookRegistry._hooks.pop(target, None)


@pytest.fixture(autouse=True)
def no_prefix_holds(monkeypatch):
    monkeypatch.setenv(HOLD_S_ENV, "0")


def _registered(targets: tuple[str, ...] = OUR_TARGETS) -> dict[str, int]:
    return {target: len(HookRegistry._hooks.get(target, [])) for target in targets}


def test_the_plugin_is_registered_with_sglang():
    plugins = {ep.name: ep.value for ep in entry_points(group="sglang.srt.plugins")}
    assert plugins.get("conveyor_sgl") == "conveyor_sgl.runtime.server.plugin:register"


def test_without_the_flag_no_hook_is_registered(clean_registry, monkeypatch):
    monkeypatch.delenv(server_plugin.ENABLE_ENV, raising=False)
    before, cli_before = _registered(), _registered(CLI_TARGETS)
    server_plugin.register()
    assert _registered() == before
    # Only the CLI hooks, so that `sglang serve --tool-partial-execution` parses at all.
    assert _registered(CLI_TARGETS) == {t: cli_before[t] + 1 for t in CLI_TARGETS}
    monkeypatch.setenv(server_plugin.ENABLE_ENV, "0")
    server_plugin.register()
    assert _registered() == before


def test_with_the_flag_the_server_hooks_are_registered_once(clean_registry, monkeypatch):
    monkeypatch.setenv(server_plugin.ENABLE_ENV, "1")
    before = _registered()
    server_plugin.register()
    server_plugin.activate(apply=False)  # e.g. the flag parsed after load_plugins: no double
    assert _registered() == {target: before[target] + 1 for target in OUR_TARGETS}


def test_with_the_flag_a_multiprocessing_child_hooks_too(clean_registry, monkeypatch):
    # sgl.Runtime serves HTTP from a multiprocessing child. SGLang's schedulers and
    # detokenizers register the hooks as well, but never call _setup_and_run_http_server.
    monkeypatch.setenv(server_plugin.ENABLE_ENV, "1")
    monkeypatch.setattr(multiprocessing, "parent_process", lambda: object())
    before = _registered()
    server_plugin.register()
    assert _registered() == {target: before[target] + 1 for target in OUR_TARGETS}


def test_launcher_lists_the_flag_and_passes_it_to_sglang(capsys, monkeypatch):
    assert "--tool-partial-execution" in build_parser().format_help()
    monkeypatch.setattr("conveyor_sgl.runtime.embedded.launcher.has_gpu", lambda: False)
    monkeypatch.setenv(server_plugin.ENABLE_ENV, "1")  # inherited from elsewhere: ignored
    for argv, expected in ((["--tool-partial-execution"], "1"), ([], "0")):
        main(["--dry-run", "--model-path", "/m", *argv])
        plan = json.loads(capsys.readouterr().out)
        assert plan["env"][server_plugin.ENABLE_ENV] == expected
        assert "--tool-partial-execution" not in plan["argv"]
