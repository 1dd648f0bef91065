"""The Python tool's result as a terminal shows it: the output assembled and capped.

``python program.py 2>&1`` shows the program's output, then the traceback (or ``sys.exit``
message) Python prints on its way out, then what finalizers print at exit. Output past the
limit is cut at an ``[output truncated]`` line; the traceback is capped on its own and keeps
its end (``[traceback truncated]``).
"""

from __future__ import annotations

import codecs

from conveyor_sgl.tools.base import ToolOutput
from conveyor_sgl.tools.python_exec import Outcome, Sink

TRUNCATION_MARKER = "[output truncated]"
TAIL_MARKER = "[traceback truncated]"


def report(outcome: Outcome, head: str, sink: Sink | None, limit: int) -> ToolOutput:
    """The tool's result: output assembled and capped, the one-line error capped too.

    Both are valid UTF-8 (lone surrogates escaped, as stderr would), so they can be sent.
    """
    error = outcome.error
    if error is not None:
        data = _stderr_bytes(error)
        error = _decode(bytes(data[:limit]), complete=len(data) <= limit)
        error += " [truncated]" if len(data) > limit else ""  # a 10 MB exception message
    output = assemble(head, sink, outcome.tail, limit)
    return ToolOutput(output=output, status=outcome.status, error=error)


def assemble(head: str, sink: Sink | None, tail: str, limit: int) -> str:
    """``head`` (compile warnings) then the sink's bytes, capped at ``limit``; then ``tail``;
    then what finalizers wrote after the program's end (``sink.end``), in the room left.

    The tail (traceback, exit message) is capped on its own and keeps its end: when output
    is cut, the error is still what the reader needs most.
    """
    body = _stderr_bytes(head)
    total = len(body)
    after, after_total = bytearray(), 0
    if sink is not None:
        end = sink.total if sink.end is None else sink.end
        kept = min(end, len(sink.data))
        body += sink.data[:kept]
        total += end
        after, after_total = sink.data[kept:], sink.total - end
    text = _decode(bytes(body[:limit]), complete=total <= limit)
    if total > limit:
        text += ("" if not text or text.endswith("\n") else "\n") + TRUNCATION_MARKER + "\n"
    text += _tail_end(tail, limit)
    if after_total and total <= limit:  # else the marker above already says output was cut
        room = limit - total
        text += _decode(bytes(after[:room]), complete=after_total <= room)
        if after_total > room:
            text += ("" if text.endswith("\n") else "\n") + TRUNCATION_MARKER + "\n"
    return text


def _tail_end(tail: str, limit: int) -> str:
    data = _stderr_bytes(tail)
    if len(data) <= limit:
        return data.decode("utf-8")
    kept = data[len(data) - limit :]
    start = kept.find(b"\n") + 1  # start at a line, unless the last line alone is too long
    if start >= len(kept):
        start = 0
        while start < len(kept) and kept[start] & 0xC0 == 0x80:  # inside a cut character
            start += 1
    return TAIL_MARKER + "\n" + _decode(bytes(kept[start:]), complete=True)


def _stderr_bytes(text: str) -> bytearray:
    return bytearray(text.encode("utf-8", "backslashreplace"))


def _decode(data: bytes, complete: bool) -> str:
    # When cut at the end, a character split by the cut is dropped rather than shown as
    # garbage; invalid bytes the program wrote itself become U+FFFD.
    decoder = codecs.getincrementaldecoder("utf-8")("replace")
    return decoder.decode(data, final=complete)
