"""The timeline and the server's events cross the wire as the protocol's structs, encoded and
decoded by msgspec on both sides: nothing is converted by hand."""

from __future__ import annotations

import dataclasses
import json

import msgspec
import pytest

from conveyor_sgl.runtime.server.protocol import (
    EVENT_KEY,
    DecodeEnd,
    PartialToolRequest,
    Timeline,
    ToolDone,
    UnitTimes,
    WireError,
    decode_event,
    decode_request,
    sse_event,
)
from conveyor_sgl.runtime.timeline import ToolResult, ToolTimeline, UnitTiming


def _timeline() -> ToolTimeline:
    return ToolTimeline(
        mode="server",
        units=[UnitTiming("x = 1\n", 10.0, 10.1, 10.2, 10.3, [0]), UnitTiming("y\n", 11.0)],
        decode_finished_at=12.0,
        result_ready_at=12.5,
        status="ok",
        output="1",
        sandbox=["landlock"],
    )


def test_a_timeline_dict_counts_from_its_zero():
    data = _timeline().to_dict(10.0)
    assert set(data) == {f.name for f in dataclasses.fields(ToolTimeline)}
    assert abs(data["units"][0]["started_at"] - 0.2) < 1e-9
    assert data["units"][0]["after"] == [0] and data["units"][1]["sent_at"] is None
    assert (data["decode_finished_at"], data["status"], data["sandbox"]) == (
        2.0,
        "ok",
        ["landlock"],
    )
    result = ToolResult(_timeline(), 10.0)
    assert result.units == data["units"] and result.to_dict() == data


def test_the_wire_timeline_has_the_timelines_fields():
    for wire, ours in ((Timeline, ToolTimeline), (UnitTimes, UnitTiming)):
        fields = {f.name for f in dataclasses.fields(ours)}
        assert {f.name for f in msgspec.structs.fields(wire)} == fields


def test_the_result_event_carries_the_timeline_by_type_at_any_zero():
    # The server: its times since the request's receipt (t0 = 10), as the wire struct.
    wire = msgspec.convert(_timeline().moved(-10.0), Timeline, from_attributes=True)
    frame = sse_event(ToolDone(wire))
    assert frame.startswith(b"data: ") and frame.endswith(b"\n\n")
    obj = json.loads(frame[len(b"data: ") :])
    assert obj[EVENT_KEY] == "result"
    # The client: decoded by type, then moved to its own zero (its send, 0.5 s earlier).
    done = decode_event(obj)
    assert isinstance(done, ToolDone) and done.tool == wire
    timeline = msgspec.convert(done.tool, ToolTimeline, from_attributes=True)
    assert timeline.moved(10.0) == _timeline()
    shifted = ToolResult(timeline, -0.5).to_dict()
    assert shifted == _timeline().to_dict(9.5)
    assert shifted["decode_finished_at"] == pytest.approx(2.5)


def test_decode_end_and_the_generations_own_events():
    obj = json.loads(sse_event(DecodeEnd("invalid field"))[len(b"data: ") :])
    assert obj == {EVENT_KEY: "decode_end", "abort_reason": "invalid field"}
    assert decode_event(obj) == DecodeEnd("invalid field")
    assert decode_event({"text": "x", "meta_info": {}}) is None  # SGLang's, not ours
    with pytest.raises(WireError, match="malformed server event"):
        decode_event({EVENT_KEY: "result", "tool": {"mode": 1}})
    with pytest.raises(WireError):
        decode_event({EVENT_KEY: "no_such_event"})


def test_the_request_body_round_trips_through_the_contract():
    request = PartialToolRequest("python", {"text": "hi"}, False, {"a": 1}, 5.0)
    assert "limits" not in request.to_body()
    assert decode_request(json.dumps(request.to_body()).encode()) == request


@pytest.mark.parametrize(
    "body, says",
    [
        (b"[]", "Expected `object`"),
        (b'{"generate": {}}', "missing required field `tool`"),
        (b'{"tool": "", "generate": {}}', "length >= 1"),
        (b'{"tool": "python", "generate": {}, "extra": 1}', "unknown field `extra`"),
        (b'{"tool": "python", "generate": {}, "result_timeout": 0}', "`$.result_timeout`"),
        (b'{"tool": "python", "generate": {}, "partial": "yes"}', "Expected `bool`"),
        (b'{"tool": "python", "generate": 1}', "`$.generate`"),
        (b"not json", "malformed"),
    ],
)
def test_a_malformed_body_is_refused_by_the_one_decoder(body, says):
    with pytest.raises(WireError, match=None) as caught:
        decode_request(body)
    assert says in str(caught.value), str(caught.value)
