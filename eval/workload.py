"""One evaluation workload, read from ``eval/workloads/<name>.yaml``.

A workload is a prompt, the reference output the tool call is forced to (a regex built with
``re.escape``, so the text is the reference while the timing is the model's own decoding),
the text around the call, the tool with its config, and a short forced final answer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

WORKLOAD_DIR = Path(__file__).resolve().parent / "workloads"
# The order of the table and the plots: the paper's heavy tools first, light ones last.
WORKLOAD_ORDER = ("code", "search", "planning", "validation", "database", "calculator")


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


def load_workload(path: Path) -> Workload:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise TypeError(f"{path}: a workload file holds one mapping")
    data.setdefault("name", path.stem)
    try:
        return Workload(**data)
    except TypeError as e:
        raise ValueError(f"{path}: {e}") from None


def load_workloads(
    names: list[str] | None = None, directory: Path = WORKLOAD_DIR
) -> list[Workload]:
    """The workloads in ``directory`` (all, or those named), in the table's order."""
    found = {p.stem: p for p in directory.glob("*.yaml")}
    wanted = names or sorted(found, key=_order)
    missing = [n for n in wanted if n not in found]
    if missing:
        raise ValueError(f"no workload file for {missing} in {directory}; have {sorted(found)}")
    return [load_workload(found[name]) for name in wanted]


def _order(name: str) -> tuple[int, str]:
    rank = WORKLOAD_ORDER.index(name) if name in WORKLOAD_ORDER else len(WORKLOAD_ORDER)
    return rank, name
