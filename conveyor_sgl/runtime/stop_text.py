"""The server's stop-string trimming rule, shared by client and server mode.

Requests go out with ``no_stop_trim`` so that the token ids and the text they cover stay in
step; what a program (and a tool's parser) sees is the text with the matched stop string cut
off, exactly as stock SGLang would show it.
"""

from __future__ import annotations

from typing import Any


def trim_matched_stop(text: str, meta_info: dict[str, Any]) -> str:
    matched = (meta_info.get("finish_reason") or {}).get("matched")
    if isinstance(matched, str) and matched:
        pos = text.find(matched)
        if pos != -1:
            return text[:pos]
    return text
