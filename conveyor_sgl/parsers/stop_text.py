"""Stop strings: the server's trimming rule, and what a tool may see while decoding goes on.

Requests go out with ``no_stop_trim`` so that the token ids and the text they cover stay in
step; what a program (and a tool's parser) sees is the text with the matched stop string cut
off, exactly as stock SGLang would show it. While streaming, the first tokens of a stop
string arrive before the server knows it matched (``<END_OF_QUERIES>`` is several tokens),
so the text is cut through ``StopHoldback``, once per stream, by the side that parses it
(``runtime.tool_call.CallDriver.take``): the client in client mode, the server in server
mode, which sends the text it showed the tool with each event; the other side holds back
nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def trim_matched_stop(text: str, meta_info: dict[str, Any]) -> str:
    matched = (meta_info.get("finish_reason") or {}).get("matched")
    if isinstance(matched, str) and matched:
        pos = text.find(matched)
        if pos != -1:
            return text[:pos]
    return text


def stop_strings(stop: str | Iterable[str] | None) -> list[str]:
    """A request's ``stop`` sampling parameter as a list of non-empty strings."""
    if stop is None:
        return []
    if isinstance(stop, str):
        return [stop] if stop else []
    return [s for s in stop if isinstance(s, str) and s]


class StopHoldback:
    """Turns a generation's growing text into the deltas a tool may parse: never any part of
    a stop string. A tail that may still become a stop string (``<END_OF`` for
    ``<END_OF_QUERIES>``) is held back until the text shows it is not one."""

    def __init__(self, stops: str | Iterable[str] | None) -> None:
        self._stops = stop_strings(stops)
        self._fed = 0  # characters of the text already handed out

    def delta(self, text: str, meta_info: dict[str, Any], finished: bool) -> str:
        """The new text a tool may see, given the whole text so far."""
        if finished:
            # Trimmed as the server would; and cut at a stop string even if the server did
            # not report it matched (a regex that forces it ends the generation as well).
            safe = self._cut(trim_matched_stop(text, meta_info))
        else:
            safe = self._safe(text)
        new = safe[self._fed :]
        self._fed = max(self._fed, len(safe))
        return new

    def rest(self, text: str) -> str:
        """Generation stopped without a stop string: the held-back tail is plain text."""
        new = text[self._fed :]
        self._fed = max(self._fed, len(text))
        return new

    def _safe(self, text: str) -> str:
        cut = self._cut(text)
        if len(cut) < len(text):
            return cut
        held = max((_prefix_tail(text, stop) for stop in self._stops), default=0)
        return text[: len(text) - held]

    def _cut(self, text: str) -> str:
        """``text`` up to its first stop string, if it holds one. The search starts where the
        handed-out text ends: no stop string can begin inside it (a tail that could was held
        back), so each token costs the new text, not the whole generation again."""
        found = [p for p in (text.find(stop, self._fed) for stop in self._stops) if p != -1]
        return text[: min(found)] if found else text


def _prefix_tail(text: str, stop: str) -> int:
    """The length of the longest end of ``text`` that is a proper prefix of ``stop``."""
    for size in range(min(len(stop) - 1, len(text)), 0, -1):
        if text.endswith(stop[:size]):
            return size
    return 0
