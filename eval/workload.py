"""One evaluation item (``eval/datasets`` builds them from their public sources).

An item is a prompt, the reference output the tool call is forced to (a regex built with
``re.escape``, so the text is the reference while the timing is the model's own decoding),
the text around the call, the tool with its config, and a short forced final answer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Workload:
    name: str
    tool: str
    prompt: str
    reference: str  # what the tool-call generation is forced to decode
    description: str = ""
    source: str = ""  # where the reference comes from
    config: dict[str, Any] = field(default_factory=dict)
    prefix: str = ""  # appended before the tool-call generation (e.g. a code fence)
    end: str = ""  # stop string, forced right after the reference
    suffix: str = ""  # appended after the generation, before the tool output
    answer: str = "Done."  # the final generation, forced too
    result_timeout_s: float = 120.0
    group: str = ""  # the benchmark workload it belongs to (eval/datasets: GROUPS)
    item: str = ""  # its id in its source dataset, e.g. "HumanEval/12"
    expect: str = "ok"  # the status the tool reports for the reference: ok, error, aborted

    def __post_init__(self) -> None:
        if not self.reference:
            raise ValueError(f"workload {self.name!r} has an empty reference")
        if self.end and self.end in self.reference:
            raise ValueError(f"workload {self.name!r}: its stop string occurs in the reference")

    @property
    def call_regex(self) -> str:
        return re.escape(self.reference) + re.escape(self.end)

    @property
    def answer_regex(self) -> str:
        return re.escape(self.answer)

    @property
    def max_tokens(self) -> int:
        # Every token decodes to at least one character: a safe cap that never cuts the text.
        return len(self.reference) + len(self.end) + 16

    def gen_args(self) -> dict[str, Any]:
        args: dict[str, Any] = {"max_tokens": self.max_tokens, "regex": self.call_regex}
        if self.end:
            args["stop"] = self.end
        return args
