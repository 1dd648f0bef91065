"""What a ParallelQA question says: the entities it names and how it changes each of them.

ParallelQA's questions name entities from a closed set (trenches, animals, deserts, rivers,
mountains, statues, towers, forests, oceans, countries, US states) and scale each one
("20% shallower", "2.5 times", "doubled"). ``mentions`` finds the names in order (typos of
the dataset kept, as a model would search them); ``factors`` reads each entity's scale
factor as an arithmetic expression for the calculator.
"""

from __future__ import annotations

import re

ENTITIES = (
    *("Mariana Trench", "Puerto Rico Trench", "Sunda Trench", "South Sandwich Trench"),
    *("Peru-Chile Trench", "cheetah", "peregrine falcon", "greyhound", "gazelle", "ostrich"),
    *("Sahara Desert", "Kalahari Desert", "Sonoran Desert", "Arabian Desert", "Atacama Desert"),
    *("Yangtze River", "Mississippi River", "Volga River", "Mekong River", "Congo River"),
    *("Conga River", "Mount Everest", "Mount Kilimanjaro", "Aconcagua", "Mount Elbert", "K2"),
    *("Christ the Redeemer", "Statue of Unity", "Washington Monument", "Motherland Calls"),
    *("Ushiku Daibutsu", "Ushiku Faibutsu", "Shanghai Tower", "Ostankino Tower", "Burj Khalifa"),
    *("Tokyo Skytree", "Empire State Building", "CN Tower", "Amazon Rainforest"),
    *("Congo Rainforest", "Congo Forest", "Australian Forest", "Borneo Rainforest"),
    *("Borneo Forest", "Black Forest", "Pacific Ocean", "Indian Ocean", "Atlantic Ocean"),
    *("Arctic Ocean", "Southern Ocean", "Vietnam", "Thailand", "Japan", "South Korea", "China"),
    *("Texas", "Florida", "California", "Michigan", "New Jersey"),
)
_CANONICAL = {name.lower(): name for name in ENTITIES}
_NAME = re.compile(
    r"\b(" + "|".join(re.escape(n) for n in sorted(ENTITIES, key=len, reverse=True)) + r")\b",
    re.IGNORECASE,
)
_CLAUSE = re.compile(r",\s*|;\s*|:\s*|\s+and\s+|\s+while\s+|\.\s+")
_UP = re.compile(
    r"increas|grow|grew|expan|extend|deep|taller|faster|higher|enhanc|boost|rise|rose|swell|"
    r"enlarg|magnif|lengthen|\badd|speedier|elevat|augment|improv|accelerat|stretch"
)
_DOWN = re.compile(
    r"decreas|shrink|shrank|shrunk|reduc|shorten|shallow|slower|drop|contract|diminish|"
    r"\blos|subtract|lower|declin|shorter|smaller"
)
_WORDS = (
    (re.compile(r"one-fifth"), "1 / 5"),
    (re.compile(r"\bhal(f|ved)\b"), "1 / 2"),
    (re.compile(r"\bdoubl"), "2"),
    (re.compile(r"\btripl"), "3"),
    (re.compile(r"\bquadrupl"), "4"),
    (re.compile(r"multiplied by five"), "5"),
    (re.compile(r"factor of (\d+)"), None),  # "reduced by a factor of 10"
    (re.compile(r"unchanged"), "1"),
)
_PERCENT = re.compile(r"(\d+(?:\.\d+)?)\s*%")
_TIMES = re.compile(r"(\d+(?:\.\d+)?)\s*times")


def mentions(question: str) -> list[str]:
    """Every entity name in the question, in order, repeats included."""
    return [_CANONICAL[m.lower()] for m in _NAME.findall(question)]


def factors(question: str) -> dict[str, str]:
    """Entity -> its scale factor as an expression (``"1 - 20 / 100"``); entities the
    question does not scale are absent. A clause with a number but no name (``subtract 10%
    of its height``) scales the last entity named that has no factor yet."""
    out: dict[str, str] = {}
    seen: list[str] = []
    up = True  # "Mariana Trench by 5%, Puerto Rico Trench by 10%": the direction carries over
    for clause in _CLAUSE.split(question):
        names = mentions(clause)
        seen += [n for n in names if n not in seen]
        text = clause.lower()
        if _DOWN.search(text):
            up = False
        elif _UP.search(text):
            up = True
        factor = _factor(text, up)
        if factor is None:
            continue
        targets = [n for n in names if n not in out] or [n for n in seen if n not in out][-1:]
        if targets:
            out[targets[-1]] = factor
    return out


def _factor(text: str, up: bool) -> str | None:
    if m := _PERCENT.search(text):
        return f"1 {'+' if up else '-'} {m[1]} / 100"
    if m := _TIMES.search(text):
        return m[1] if up else f"1 / {m[1]}"
    for pattern, value in _WORDS:
        if m := pattern.search(text):
            return value if value is not None else f"1 / {m[1]}"
    return None
