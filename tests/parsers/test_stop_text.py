"""A tool never parses any part of a stop string, however the stream splits it."""

from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st

from conveyor_sgl.parsers.stop_text import StopHoldback, stop_strings

STOP = "<END_OF_QUERIES>"
MATCHED = {"finish_reason": {"type": "stop", "matched": STOP}}


def stream(holdback: StopHoldback, pieces: list[str], meta: dict) -> list[str]:
    """Feed the growing text; the last piece is the finished event."""
    out, text = [], ""
    for i, piece in enumerate(pieces):
        text += piece
        last = i == len(pieces) - 1
        out.append(holdback.delta(text, meta if last else {}, finished=last))
    return out


def test_the_first_tokens_of_a_stop_string_are_held_back():
    pieces = ["json dumps\n", "sqlite3 rows\n", "<END", "_OF", "_QUERIES>"]
    deltas = stream(StopHoldback(STOP), pieces, MATCHED)
    assert deltas == ["json dumps\n", "sqlite3 rows\n", "", "", ""]


def test_a_held_tail_that_is_no_stop_string_is_released():
    pieces = ["a <", "END", " b", "\n"]
    deltas = stream(StopHoldback(STOP), pieces, {"finish_reason": {"type": "length"}})
    assert deltas == ["a ", "", "<END b", "\n"]


def test_a_stop_string_the_server_did_not_report_is_cut_too():
    # The regex forced the stop string and the generation ended on the grammar instead.
    holdback = StopHoldback(")</tool_call>")
    assert holdback.delta('{"a": 1}', {}, finished=False) == '{"a": 1}'
    final = holdback.delta('{"a": 1})</tool_call>', {"finish_reason": {"type": "stop"}}, True)
    assert final == ""


def test_a_generation_cut_short_releases_its_tail_as_text():
    holdback = StopHoldback(["```"])
    assert holdback.delta("x = 1\n``", {}, finished=False) == "x = 1\n"
    assert holdback.rest("x = 1\n``") == "``"


def test_stop_parameter_shapes():
    assert stop_strings(None) == [] and stop_strings("") == []
    assert stop_strings("```") == ["```"]
    assert stop_strings(["a", "", 3, "b"]) == ["a", "b"]


@given(
    body=st.text(alphabet="ab<END_OFQUIRS>\n", max_size=60),
    cuts=st.lists(st.integers(min_value=0, max_value=80), max_size=12),
)
def test_any_split_gives_the_trimmed_text_and_never_a_stop_prefix_early(body, cuts):
    body = body.split(STOP)[0]  # the stop string occurs once, at the end
    text = body + STOP
    bounds = sorted({0, len(text), *(c for c in cuts if c < len(text))})
    pieces = [text[a:b] for a, b in itertools.pairwise(bounds)]
    holdback, fed, growing = StopHoldback(STOP), "", ""
    for i, piece in enumerate(pieces):
        growing += piece
        last = i == len(pieces) - 1
        fed += holdback.delta(growing, MATCHED if last else {}, finished=last)
        assert body.startswith(fed)  # never a character of the stop string
    assert fed == body
