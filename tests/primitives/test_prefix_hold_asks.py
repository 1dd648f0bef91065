"""What a program's requests ask of the server's prefix holds (client side, no server)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from conveyor_sgl.primitives import prefix_hold
from conveyor_sgl.runtime.server.protocol import PrefixHold, prefix_hold_of


def asked(s, hold):
    payload: dict = {}
    continued = prefix_hold.ask(s, payload, hold=hold)
    return prefix_hold_of(payload.get("kv_hints")), continued


def test_a_tool_call_holds_and_the_next_generation_continues_it(monkeypatch):
    monkeypatch.delenv(prefix_hold.HOLD_S_ENV, raising=False)
    s = SimpleNamespace()
    first, continued = asked(s, hold=True)
    assert first is not None and first.hold and first.release == [] and not continued
    second, continued = asked(s, hold=True)  # a second tool call continues the first
    assert second.hold and second.hold != first.hold and second.release == [first.hold]
    answer, continued = asked(s, hold=False)
    assert answer == PrefixHold(hold=None, release=[second.hold]) and continued
    assert asked(s, hold=False) == (None, False)  # nothing open: no hint at all


def test_the_environment_switch_stops_asking_but_still_releases(monkeypatch):
    s = SimpleNamespace()
    monkeypatch.delenv(prefix_hold.HOLD_S_ENV, raising=False)
    first, _ = asked(s, hold=True)
    monkeypatch.setenv(prefix_hold.HOLD_S_ENV, "0")
    second, _ = asked(s, hold=True)
    assert second == PrefixHold(hold=None, release=[first.hold])
    assert asked(s, hold=True) == (None, False)


@pytest.mark.parametrize(("cached", "reused"), [(650, True), (700, True), (12, False)])
def test_each_generation_after_a_tool_call_says_whether_it_found_the_prefix(cached, reused):
    s = SimpleNamespace()
    prefix_hold.note_tool_call(s, {"prompt_tokens": 650, "completion_tokens": 30})
    meta = {"cached_tokens": cached, "prompt_tokens": 700}
    prefix_hold.report_reuse(s, meta, held=True)
    assert meta["prefix_reuse"] == {
        "held": True,
        "prefix_tokens": 650,
        "cached_tokens": cached,
        "reused": reused,
    }


def test_no_report_before_any_tool_call():
    meta = {"cached_tokens": 3}
    prefix_hold.report_reuse(SimpleNamespace(), meta, held=False)
    assert "prefix_reuse" not in meta
