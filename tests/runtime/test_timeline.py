"""The timeline dict is built and read by one class on both sides of the wire."""

from __future__ import annotations

import json

import pytest

from conveyor_sgl.runtime.server.protocol import PartialToolRequest, WireError, decode_request
from conveyor_sgl.runtime.timeline import ToolTimeline, UnitTiming


def test_a_timeline_dict_reads_back_to_the_same_timeline_at_any_zero():
    timeline = ToolTimeline(
        mode="server",
        units=[UnitTiming("x = 1\n", 10.0, 10.1, 10.2, 10.3), UnitTiming("y\n", 11.0)],
        decode_finished_at=12.0,
        result_ready_at=12.5,
        status="ok",
        output="1",
        sandbox=["landlock"],
    )
    data = timeline.to_dict(10.0)
    assert abs(data["units"][0]["started_at"] - 0.2) < 1e-9
    assert ToolTimeline.from_dict(data, t0=10.0) == timeline
    # The client's view: the same times, moved by its offset to the server's zero.
    shifted = ToolTimeline.from_dict(data, t0=0.5).to_dict(0.0)
    assert shifted["decode_finished_at"] == data["decode_finished_at"] + 0.5
    assert shifted["units"][1]["sent_at"] is None


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
