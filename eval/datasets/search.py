"""search: one query list per LLMCompiler HotpotQA comparison question or movie question.

LLMCompiler's plans for these datasets are parallel searches and ``join``: HotpotQA's
comparison questions search the two things compared ("Were Scott Derrickson and Ed Wood of
the same nationality?" -> ``Scott Derrickson``, ``Ed Wood``); movie recommendations search
the four movies named and the four options. The query list is those searches, one per line,
in the order LLMCompiler's prompts write them. The two things compared are read from the
question with the patterns comparison questions are written in (``X or Y``, ``X and Y``,
after the last comma or colon, capitalised names); a question they do not fit is searched
whole. Search latency is MODELLED (each query sleeps 700 ms in the tool, one query at a
time); retrieval is real BM25 over local documentation.
"""

from __future__ import annotations

from typing import Any

from eval.datasets import llmcompiler
from eval.datasets.sampling import sample_strata
from eval.workload import Workload

GROUP = "search"
CONFIG = {"delay_ms": 700, "concurrency": 1, "top_k": 2}
_SOURCES = {
    "hotpotqa": "HotpotQA comparison",
    "movie": "Movie recommendations",
    "parallelqa": "ParallelQA",
}
_QUESTION_WORDS = frozenset(
    "Who What Which Where When Whose How Is IS Are Was Were Do Does Did Has Have Both Between"
    " In".split()
)
_CONNECTORS = frozenset(
    {"of", "the", "de", "du", "del", "la", "le", "et", "and", "&", "for", "von", "in"}
)


def compared(question: str) -> list[str]:
    """The two things a HotpotQA comparison question compares, or [question] if unclear."""
    q = question.strip().rstrip("?").strip()
    for conj in (" or ", " and "):
        left, found, right = q.partition(conj)
        if not found:
            continue
        pair = [_left_name(left.rstrip(" ,")), _right_name(right)]
        if all(pair):
            return pair
    return [q]


def _is_name(word: str) -> bool:
    word = word.lstrip("\"'(")
    return bool(word) and (word[0].isupper() or word[0].isdigit()) and word not in _QUESTION_WORDS


def _left_name(text: str) -> str:
    """The first thing compared: after a colon or the last comma, else the run of
    capitalised words that ends the text ("Who was born first D. Ross Lederman")."""
    for sep in (":", ","):
        if sep in text:
            words = text.rpartition(sep)[2].split()
            while words and not _is_name(words[0]):
                words.pop(0)  # "between My Kid..." -> "My Kid..."
            return _strip(" ".join(words))
    words = text.split()
    start = len(words)
    while start > 0 and (
        _is_name(words[start - 1])
        or (words[start - 1] in _CONNECTORS and start < len(words) and start > 1)
    ):
        start -= 1
    while start < len(words) and not _is_name(words[start]):
        start += 1  # a run never starts with "of" or "the"
    return _strip(" ".join(words[start:]))


def _right_name(text: str) -> str:
    """The second thing compared: the run of capitalised words that starts the text (after
    an article), up to the first lowercase word or comma; the whole text if none."""
    words = text.split()
    while words and words[0] in ("the", "a", "an"):
        words.pop(0)
    run: list[str] = []
    for i, word in enumerate(words):
        joins = word in _CONNECTORS and any(_is_name(w) for w in words[i + 1 : i + 3])
        if not (_is_name(word) or (run and joins)):
            break
        run.append(word)
        if word.endswith((",", ":")):
            break
    return _strip(" ".join(run) or " ".join(words))


def _strip(text: str) -> str:
    return text.strip(" ?.,:;")


def movie_queries(question: str) -> list[str]:
    """The four movies named, then the four options (LLMCompiler's movie plan)."""
    head, _, options = question.partition("\nOptions:\n")
    named = head.removeprefix("Find a movie similar to ").split(", ")
    return [q.strip() for q in named + options.splitlines() if q.strip()]


def workload(source: str, item: dict[str, Any], queries: list[str]) -> Workload:
    question = item["question"].strip()
    return Workload(
        name=f"{GROUP}:{source}/{item['id']}",
        group=GROUP,
        item=f"{source}/{item['id']}",
        tool="search",
        prompt=f"Question: {question}\nSearch for what you need to answer it, one query per line.",
        reference="".join(q + "\n" for q in queries),
        description=f"LLMCompiler {source}: {len(queries)} parallel searches",
        source=f"{_SOURCES[source]}, {llmcompiler.CITATION}",
        config=CONFIG,
        prefix="Queries:\n",
        end="<END_OF_QUERIES>",
        suffix="<END_OF_QUERIES>\nResults:\n",
        answer=f"The answer is {item['answer']}.",
    )


def load_sources() -> list[list[Workload]]:
    """[HotpotQA comparison (1,487), movie recommendations (500)], each in file order."""
    hotpot = [
        workload("hotpotqa", x, compared(x["question"])) for x in llmcompiler.dataset("hotpotqa")
    ]
    movies = [
        workload("movie", x, movie_queries(x["question"])) for x in llmcompiler.dataset("movie")
    ]
    return [hotpot, movies]


def load(limit: int | None = None, seed: int = 0) -> list[Workload]:
    """All of both, or a sample with an equal share of each (movie questions have 8
    searches, HotpotQA's 2: a proportional sample would be three quarters HotpotQA)."""
    return sample_strata(load_sources(), limit, seed)
