"""Several independent function calls per message: time to all results when each call starts
as its arguments close, against calls started when the stream ends.

Items: BFCL v4's ``parallel`` and ``parallel_multiple`` categories (``eval/datasets/bfcl.py``:
the ``bfcl-eval`` wheel, read without installing it), 2-4 calls per message, a seeded sample
of each. Every function is a plain Python callable given a modelled latency (a sleep drawn per
item and call, seeded, uniform in ``--latency-ms``: a web API, a database, a booking
service), checked against the item's own schema (BFCL's parameters as JSON Schema, also the
``tools`` list the request declares). The model's output is forced (SGLang's ``regex``) to the
item's ground-truth calls in the qwen25 tool-call format, and streamed by the embedded server's
``/v1/chat/completions`` with ``--tool-call-parser qwen25``; the OpenAI helper
(``run_tool_calls``) runs the calls.

Modes, each item in each, the order rotating from item to item (after a one-token warm-up
that compiles the item's regex):
- ``as closed``: a call starts the moment its own arguments close (``ToolSpec(fn)``);
- ``at stream end``: every call starts when the stream ends, all at once (``ToolSpec(fn,
  partial=False)``): the baseline, what a client that runs parallel calls concurrently does;
- ``one by one``: the stream is read to its end, then the calls run one after another (a
  plain loop over ``tool_calls``).
Per item and mode: ``all results`` (request sent -> the last result in), ``after stream``
(the stream's last chunk -> the last result in). The saving is paired by item against the
baseline. Usage::

    python -m eval.function_calls_bench                 # starts the embedded server
    python -m eval.function_calls_bench --items 8 --url http://127.0.0.1:30000
"""

from __future__ import annotations

import argparse
import json
import random
import re
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from eval.datasets import bfcl

CATEGORIES = ("parallel", "parallel_multiple")
MODES = ("as closed", "at stream end", "one by one")
BASELINE = "at stream end"


def safe_name(name: str) -> str:
    """An OpenAI function name (``[a-zA-Z0-9_-]``): BFCL's dots become underscores."""
    return re.sub(r"[^a-zA-Z0-9_-]", "_", name)


def load_items(per_category: int, seed: int) -> list[dict[str, Any]]:
    items = []
    for category in CATEGORIES:
        pairs = bfcl.category(category)
        rng = random.Random(f"{seed}:{category}")  # noqa: S311 - a seeded sample
        for question, answer in rng.sample(pairs, per_category):
            functions = {
                safe_name(f["name"]): {
                    "description": f.get("description", ""),
                    "schema": bfcl.json_schema(f["parameters"]),
                }
                for f in question["function"]
            }
            calls = []
            for truth in answer["ground_truth"]:
                ((name, options),) = truth.items()
                arguments = {k: bfcl.pick(v) for k, v in options.items()}
                arguments = {k: v for k, v in arguments.items() if v != bfcl.EMPTY}
                calls.append((safe_name(name), arguments))
            if any(_invalid(functions, name, arguments) for name, arguments in calls):
                continue  # a ground truth its own schema refuses: not this benchmark's subject
            items.append(
                {
                    "id": question["id"],
                    "message": bfcl.user_message(question),
                    "functions": functions,
                    "calls": calls,
                }
            )
    return items


def _invalid(functions: dict[str, Any], name: str, arguments: dict[str, Any]) -> bool:
    from conveyor_sgl.runtime.function_call import FunctionTool

    function = functions.get(name)
    return function is None or FunctionTool(name, function["schema"]).check(arguments) is not None


def forced(calls: list[tuple[str, dict[str, Any]]]) -> str:
    text = "\n".join(
        "<tool_call>\n" + json.dumps({"name": n, "arguments": a}) + "\n</tool_call>"
        for n, a in calls
    )
    return re.escape(text)


def latencies(item: dict[str, Any], seed: int, low_ms: float, high_ms: float) -> list[float]:
    rng = random.Random(f"{seed}:{item['id']}")  # noqa: S311 - modelled latencies
    return [rng.uniform(low_ms, high_ms) / 1000 for _ in item["calls"]]


def modelled(name: str, delays: list[float]) -> Callable[..., str]:
    """A function that takes ``delays[k]`` seconds on its k-th call in a message."""
    count = [0]

    def function(**arguments: Any) -> str:
        k = min(count[0], len(delays) - 1)
        count[0] += 1
        time.sleep(delays[k])
        return json.dumps({"function": name, "arguments": arguments, "status": "done"})

    function.__name__ = name
    return function


def call_delays(item: dict[str, Any], delays: list[float]) -> dict[str, list[float]]:
    """Per function, the delays of its calls in call order."""
    out: dict[str, list[float]] = {}
    for (name, _), delay in zip(item["calls"], delays, strict=True):
        out.setdefault(name, []).append(delay)
    return out


class Arrivals:
    def __init__(self, stream: Any) -> None:
        self.stream = stream
        self.last = 0.0

    def __iter__(self) -> Iterator[Any]:
        for chunk in self.stream:
            self.last = time.monotonic()
            yield chunk


def run_item(client: Any, item: dict[str, Any], mode: str, delays: list[float]) -> dict[str, Any]:
    from conveyor_sgl import ToolSpec, run_tool_calls
    from conveyor_sgl.runtime.function_call import CallableTool

    per_function = call_delays(item, delays)
    declarations = [
        {
            "type": "function",
            "function": {"name": n, "description": f["description"], "parameters": f["schema"]},
        }
        for n, f in item["functions"].items()
    ]
    functions = {
        n: CallableTool(modelled(n, per_function.get(n, [0.0])), schema=f["schema"])
        for n, f in item["functions"].items()
    }
    t0 = time.monotonic()
    stream = Arrivals(
        client.chat.completions.create(
            model="default",
            messages=[{"role": "user", "content": item["message"]}],
            tools=declarations,
            stream=True,
            temperature=0,
            max_tokens=1024,
            extra_body={"regex": forced(item["calls"])},
        )
    )
    if mode == "one by one":
        calls = run_tool_calls(stream, {})  # no specs: the calls are ours to run
        finished = []
        for call in calls.calls:
            arguments = json.loads(call.arguments)
            functions[call.name].fn(**arguments)
            finished.append(time.monotonic())
        statuses = ["ok"] * len(finished)
        names = [c.name for c in calls.calls]
    else:
        partial = mode == "as closed"
        specs = {n: ToolSpec(f, partial=partial) for n, f in functions.items()}
        calls = run_tool_calls(stream, specs, t0=t0, timeout_s=60)
        results = [c.result for c in calls.calls]
        statuses = [r.status if r is not None else "none" for r in results]
        finished = [
            r.timeline.units[0].finished_at or r.timeline.result_ready_at
            for r in results
            if r is not None and r.timeline.units
        ]
        names = [c.name for c in calls.calls]
    assert names == [n for n, _ in item["calls"]], (names, item["calls"])
    assert statuses == ["ok"] * len(item["calls"]), (item["id"], mode, statuses)
    done = max(finished)
    return {
        "all_results_s": done - t0,
        "after_stream_s": done - stream.last,
        "stream_s": stream.last - t0,
    }


def warm_up(client: Any, item: dict[str, Any]) -> None:
    client.chat.completions.create(
        model="default",
        messages=[{"role": "user", "content": item["message"]}],
        max_tokens=1,
        extra_body={"regex": forced(item["calls"])},
    )


@contextmanager
def server_url(url: str | None) -> Iterator[str]:
    if url:
        yield url
        return
    from conveyor_sgl.runtime.embedded.server_process import EmbeddedServer

    with EmbeddedServer(extra_args=["--tool-call-parser", "qwen25"]) as embedded:
        yield embedded.url


def summarize(rows: list[dict[str, Any]]) -> list[str]:
    by_item: dict[str, dict[str, dict[str, Any]]] = {}
    for row in rows:
        by_item.setdefault(row["id"], {})[row["mode"]] = row
    ids = sorted(by_item)
    n = len(ids)
    calls = statistics.median(len(by_item[i][BASELINE]["calls"]) for i in ids)
    lines = [
        f"{n} messages (BFCL parallel + parallel_multiple), median {calls:g} calls each; "
        "seconds, median [p10, p90]; saving paired by message against the baseline"
    ]
    lines.append(
        f"{'mode':<26} {'stream':>18} {'all results':>18} {'after stream':>18} "
        f"{'saving (all)':>24} {'saving (after)':>24}"
    )
    for mode in MODES:

        def col(key: str, m: str = mode) -> list[float]:
            return [by_item[i][m][key] for i in ids]

        def saving(key: str, m: str = mode) -> str:
            if m == BASELINE:
                return "-"
            return _dist(
                [1 - a / b for a, b in zip(col(key), col(key, BASELINE), strict=True)], True
            )

        label = mode + (" (baseline)" if mode == BASELINE else "")
        lines.append(
            f"{label:<26} {_dist(col('stream_s')):>18} {_dist(col('all_results_s')):>18} "
            f"{_dist(col('after_stream_s')):>18} {saving('all_results_s'):>24} "
            f"{saving('after_stream_s'):>24}"
        )
    return lines


def _dist(values: list[float], percent: bool = False) -> str:
    ordered = sorted(values)

    def q(p: float) -> float:
        return ordered[min(len(ordered) - 1, int(p * (len(ordered) - 1) + 0.5))]

    if percent:
        return f"{statistics.median(values):+.1%} [{q(0.1):+.1%}, {q(0.9):+.1%}]"
    return f"{statistics.median(values):.2f} [{q(0.1):.2f}, {q(0.9):.2f}]"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=10, help="messages per category")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--latency-ms", default="300:800", help="LOW:HIGH per call")
    parser.add_argument("--url", help="a server with --tool-call-parser qwen25 (else embedded)")
    parser.add_argument("--out", help="write the per-item rows here (JSON)")
    args = parser.parse_args(argv)
    low, high = (float(x) for x in args.latency_ms.split(":"))
    import openai

    items = load_items(args.items, args.seed)
    rows = []
    with server_url(args.url) as url:
        client = openai.OpenAI(base_url=url + "/v1", api_key="none", timeout=300)
        for k, item in enumerate(items):
            warm_up(client, item)
            delays = latencies(item, args.seed, low, high)
            order = MODES[k % 3 :] + MODES[: k % 3]
            for mode in order:
                row = run_item(client, item, mode, delays)
                rows.append({"id": item["id"], "mode": mode, "calls": item["calls"], **row})
            print(
                f"{item['id']:<24} {len(item['calls'])} calls  "
                + "  ".join(f"{r['mode']}: {r['all_results_s']:.2f}s" for r in rows[-3:]),
                file=sys.stderr,
                flush=True,
            )
    if args.out:
        with open(args.out, "w") as f:
            json.dump(rows, f, indent=1)
    print("\n".join(summarize(rows)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
