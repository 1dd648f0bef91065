"""The prefix-hold table, its settings, its wire and its flags (no server: a fake tree cache
that counts locks the way SGLang's does)."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

import pytest

from conveyor_sgl.runtime.server.cli_flags import add_server_mode_flags, prefix_hold_env
from conveyor_sgl.runtime.server.prefix_holds import (
    HOLD_S_ENV,
    POLICY_ENV,
    SHARE_ENV,
    HoldSettings,
    HoldSettingsError,
    PrefixHolds,
)
from conveyor_sgl.runtime.server.protocol import (
    PrefixHold,
    WireError,
    decode_release,
    prefix_hold_hints,
    prefix_hold_of,
)


class FakeTree:
    """Lock counts per node, as ``inc_lock_ref``/``dec_lock_ref`` keep them."""

    def __init__(self) -> None:
        self.locks: dict[str, int] = {}

    def lock(self, node: str) -> str:
        self.locks[node] = self.locks.get(node, 0) + 1
        return node

    def unlock(self, lock: str) -> None:
        self.locks[lock] -= 1
        assert self.locks[lock] >= 0


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def table(pool: int = 1000, hold_s: float = 60, share: float = 0.9):
    tree, clock = FakeTree(), Clock()
    holds = PrefixHolds(tree, pool, HoldSettings(hold_s=hold_s, share=share), clock=clock)
    return holds, tree, clock


def test_a_hold_locks_its_node_until_the_continuation_releases_it():
    holds, tree, _ = table()
    assert holds.take("a", "node-a", 300, None)
    assert tree.locks == {"node-a": 1} and holds.held_tokens == 300
    assert holds.release("a", "continued")
    assert tree.locks == {"node-a": 0} and len(holds) == 0
    assert not holds.release("a", "continued")  # once
    assert holds.state()["released"]["continued"] == 1


def test_what_is_held_is_bounded_by_the_share_of_the_pool():
    holds, tree, _ = table(pool=1000, share=0.5)  # 500 tokens
    assert holds.take("a", "n1", 300, None)
    assert not holds.take("b", "n2", 300, None)  # 600 > 500: not taken
    assert holds.take("c", "n3", 200, None)
    assert tree.locks == {"n1": 1, "n3": 1}
    state = holds.state()
    assert (state["held_tokens"], state["budget_tokens"], state["refused"]) == (500, 500, 1)


def test_a_hold_passes_its_deadline_the_servers_cap_bounding_the_request():
    holds, tree, clock = table(hold_s=10)
    holds.take("short", "n1", 10, 2.0)
    holds.take("long", "n2", 10, 1000.0)  # asks for more than the server allows: 10 s
    clock.now += 2.5
    holds.release_expired()
    assert list(holds.holds) == ["long"]
    clock.now += 8
    holds.release_expired()
    assert len(holds) == 0 and tree.locks == {"n1": 0, "n2": 0}
    assert holds.released["deadline"] == 2


def test_pressure_gives_up_the_newest_holds_until_what_waits_fits():
    holds, tree, _ = table(pool=10_000)
    for key in "abcd":
        holds.take(key, "node-" + key, 100, None)
    holds.give_up_newest_for(150)  # two holds of 100
    assert list(holds.holds) == ["a", "b"]
    holds.give_up_newest_for(0)  # at least one
    assert list(holds.holds) == ["a"]
    assert holds.released["pressure"] == 3 and tree.locks["node-d"] == 0


def test_a_hold_a_waiting_request_continues_goes_last():
    holds, _, _ = table(pool=10_000)
    for key in "abc":
        holds.take(key, "node-" + key, 100, None)
    holds.give_up_newest_for(150, keep={"c"})  # "c" is about to be continued
    assert list(holds.holds) == ["c"]
    holds.give_up_newest_for(50, keep={"c"})
    assert len(holds) == 0


def test_the_same_key_held_again_replaces_the_old_hold():
    holds, tree, _ = table()
    holds.take("k", "n1", 100, None)
    holds.take("k", "n2", 150, None)
    assert tree.locks == {"n1": 0, "n2": 1} and holds.held_tokens == 150
    holds.release_all("released")
    assert tree.locks == {"n1": 0, "n2": 0}


def test_settings_from_the_environment():
    assert HoldSettings.from_env({}).enabled
    assert not HoldSettings.from_env({HOLD_S_ENV: "0"}).enabled
    assert HoldSettings.from_env({SHARE_ENV: "0.25"}).share == 0.25
    assert HoldSettings.from_env({POLICY_ENV: "hold-first"}).policy == "hold-first"
    bad_policy = {POLICY_ENV: "whenever"}
    for bad in ({HOLD_S_ENV: "-1"}, {SHARE_ENV: "1.5"}, {HOLD_S_ENV: "soon"}, bad_policy):
        with pytest.raises(HoldSettingsError, match="CONVEYOR_SGL_PREFIX_HOLD_"):
            HoldSettings.from_env(bad)


def test_the_flags_become_the_environment_the_scheduler_reads():
    parser = argparse.ArgumentParser()
    add_server_mode_flags(parser)
    flags = "--tool-prefix-hold-s 5 --tool-prefix-hold-share 0.5 --tool-prefix-hold-policy"
    args = parser.parse_args([*flags.split(), "hold-first"])
    expected = {HOLD_S_ENV: "5.0", SHARE_ENV: "0.5", POLICY_ENV: "hold-first"}
    assert prefix_hold_env(args, {}) == expected
    with pytest.raises(HoldSettingsError):
        prefix_hold_env(parser.parse_args(["--tool-prefix-hold-share", "2"]), {})


OFF = ["--tool-prefix-hold-s", "0"]


def test_the_launcher_passes_the_off_switch_to_every_server_process():
    out = subprocess.run(
        [sys.executable, "-m", "conveyor_sgl.launch_server", "--dry-run", *OFF],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert json.loads(out.stdout)["env"][HOLD_S_ENV] == "0.0"


def test_the_server_off_switch_registers_no_scheduler_hook():
    """With holds off, the plugin patches nothing in the scheduler (SGLang's HookRegistry in
    a fresh process, as SGLang's load_plugins runs it)."""
    code = (
        "from sglang.srt.plugins.hook_registry import HookRegistry\n"
        "from conveyor_sgl.runtime.server import plugin\n"
        "plugin.register()\n"
        "print(sorted(t for t in HookRegistry._hooks if 'Scheduler' in t or 'on_release' in t))"
    )
    for env, expected in (({HOLD_S_ENV: "0"}, "[]"), ({}, "get_next_batch_to_run")):
        out = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            timeout=120,
            env={**_env(), **env},
            check=True,
        )
        assert expected in out.stdout.strip().splitlines()[-1]


def _env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if k != HOLD_S_ENV}


def test_the_hint_travels_in_kv_hints_and_a_bad_one_is_ignored():
    from sglang.srt.managers.kv_hints import decode_kv_hints_envelope

    hints = prefix_hold_hints(PrefixHold(hold="k1", release=["k0"], hold_s=3))
    envelope = decode_kv_hints_envelope(hints)  # as SGLang carries it to the scheduler
    assert prefix_hold_of(envelope) == PrefixHold(hold="k1", release=["k0"], hold_s=3)
    assert prefix_hold_of(None) is None
    bad = json.loads(json.dumps(hints))
    bad["actions"][0]["payload"] = {"hold": "x" * 65}  # over the key's length
    assert prefix_hold_of(bad) is None
    other = json.loads(json.dumps(hints))
    other["actions"][0]["action_type"] = "someone.else"
    assert prefix_hold_of(other) is None


def test_the_release_body_is_decoded_by_one_decoder():
    assert decode_release(b'{"keys": ["a", "b"]}').keys == ["a", "b"]
    for body in (b"{}", b'{"keys": []}', b'{"keys": ["a"], "x": 1}', b"not json"):
        with pytest.raises(WireError):
            decode_release(body)
