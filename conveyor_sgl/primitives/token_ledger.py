"""Exact token ids for the program text, so appending a tool result keeps the prefix cache.

The stock frontend re-sends the whole text; the server re-tokenizes it, and where that
differs from the ids it generated, RadixAttention stops matching (measured: 27 of 403
tokens reused). After a partial tool we know the exact ids of the prompt and of the output,
so later generations send ``input_ids = known ids + tokenize(new text)`` instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from conveyor_sgl.parsers.stop_text import trim_matched_stop
from conveyor_sgl.primitives.endpoint import Endpoint, GenerateEvent

_ATTR = "_conveyor_ledger"


@dataclass(frozen=True)
class TokenLedger:
    """``prompt_ids`` encode ``prompt_text`` and ``output_ids`` encode ``output_text``, exactly
    as the server saw and produced them."""

    prompt_text: str
    prompt_ids: tuple[int, ...]
    output_text: str
    output_ids: tuple[int, ...]

    def prompt_for(self, text: str, endpoint: Endpoint) -> dict[str, Any]:
        """The request prompt for ``text``: known ids for the longest covered prefix."""
        full = self.prompt_text + self.output_text
        if text.startswith(full):
            covered, ids = full, self.prompt_ids + self.output_ids
        elif text.startswith(self.prompt_text):
            covered, ids = self.prompt_text, self.prompt_ids
        else:
            return {"text": text}
        rest = text[len(covered) :]
        return {"input_ids": list(ids) + (endpoint.tokenize(rest) if rest else [])}


def visible_text(event: GenerateEvent) -> str:
    """What stock SGLang would show: the text with a matched stop string cut off.

    Requests go out with ``no_stop_trim`` (so the ledger knows the stop string's ids); this
    applies the server's own trimming rule on the client."""
    return trim_matched_stop(event.text, event.meta_info)


def ledger_after(
    prompt_text: str, final: GenerateEvent, sent: dict[str, Any] | None = None
) -> TokenLedger | None:
    """The ledger for ``prompt_text`` + this generation, or None if ids are missing. The
    prompt's ids are those the server sent back, else those the request ``sent``."""
    prompt_ids = final.prompt_token_ids or (sent or {}).get("input_ids")
    if prompt_ids is None:
        return None
    output_ids = list(final.output_ids)
    matched = (final.meta_info.get("finish_reason") or {}).get("matched")
    # A matched stop *token* (e.g. EOS) is in the ids but not in the text: leave it out.
    if isinstance(matched, int) and output_ids and output_ids[-1] == matched:
        output_ids.pop()
    return TokenLedger(prompt_text, tuple(prompt_ids), final.text, tuple(output_ids))


def get_ledger(executor: Any) -> TokenLedger | None:
    return getattr(executor, _ATTR, None)


def set_ledger(executor: Any, ledger: TokenLedger | None) -> None:
    setattr(executor, _ATTR, ledger)
